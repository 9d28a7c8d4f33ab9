"""What the settings models share: their error, and checks of values several of them hold."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from workflows.mail.addresses import AddressError, parse_addr_spec
from workflows.providers.endpoints import is_loopback

MIN_TOKEN_CHARS = 32
MIN_SECRET_CHARS = 16
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the field."""


def address_value(value: str) -> str:
    """An email address setting, normalised (a field validator's ValueError names the field)."""
    try:
        return parse_addr_spec(value)
    except AddressError as exc:
        raise ValueError(str(exc)) from exc


def is_https_or_loopback(url: str) -> bool:
    """https://, or http:// to a loopback address (a local test server)."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


def check_env_name(where: str, field: str, value: str | None) -> None:
    if value is None or not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{where}: {field}: {value!r} is not an environment variable name (the secret itself?)")
