"""Bearer tokens and the server's signing key: from the environment, or generated once into the data dir."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from server.settings import Settings, SettingsError


@dataclass(frozen=True)
class Secrets:
    agent_token: str
    admin_token: str
    secret_key: bytes
    # Where generated values live, to tell the user; None when set in the environment.
    agent_token_file: Path | None
    admin_token_file: Path | None

    def role_of(self, token: str) -> str | None:
        """Which role a presented bearer token holds: "agent", "admin" or None."""
        if hmac.compare_digest(token.encode(), self.agent_token.encode()):
            return "agent"
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return "admin"
        return None


def _read_or_create(path: Path) -> str:
    """Read a secret file, or create it with 0600 permissions if it does not exist yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if not value:
            raise SettingsError(f"{path} is empty; delete it to generate a new value") from None
        return value
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _resolve(configured: SecretStr | None, path: Path) -> tuple[str, Path | None]:
    if configured is not None:
        return configured.get_secret_value(), None
    return _read_or_create(path), path


def load_secrets(settings: Settings) -> Secrets:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    agent, agent_file = _resolve(settings.agent_token, settings.data_dir / "agent.token")
    admin, admin_file = _resolve(settings.admin_token, settings.data_dir / "admin.token")
    key, _ = _resolve(settings.secret_key, settings.data_dir / "secret.key")
    if hmac.compare_digest(agent, admin):
        raise SettingsError("the agent token and the admin token are the same value; one token, one role")
    if len(agent) < 16 or len(admin) < 16:
        raise SettingsError("tokens must be at least 16 characters long")
    return Secrets(agent, admin, key.encode(), agent_file, admin_file)
