"""Bearer tokens and the server's signing key: from the environment, or generated once into the data
dir — or, with ``MAILGATE_DATABASE_URL``, into the shared database, so that every front door and
worker started with an empty data dir agrees on them."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from server.settings import MIN_TOKEN_CHARS, Settings, SettingsError
from server.stores import shared_values
from workflows.store.values import SharedValues


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


def _resolve(configured: SecretStr | None, path: Path, shared: SharedValues | None = None) -> tuple[str, Path | None]:
    if configured is not None:
        return configured.get_secret_value(), None
    if shared is not None:
        return shared.get_or_create(path.name, lambda: secrets.token_urlsafe(32)), None
    return _read_or_create(path), path


def secure_data_dir(data_dir: Path) -> None:
    """The data dir holds every draft and every secret: 0700 for it and its folders, 0600 for its
    files, also for files that an older version or another program created more openly."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                with contextlib.suppress(FileNotFoundError):  # a SQLite journal that just went
                    path.chmod(0o600)


def load_secrets(settings: Settings) -> Secrets:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shared = shared_values(settings)
    try:
        agent, agent_file = _resolve(settings.agent_token, settings.data_dir / "agent.token", shared)
        admin, admin_file = _resolve(settings.admin_token, settings.data_dir / "admin.token", shared)
        key, key_file = _resolve(settings.secret_key, settings.data_dir / "secret.key", shared)
    finally:
        if shared is not None:
            shared.close()
    if hmac.compare_digest(agent, admin):
        raise SettingsError("the agent token and the admin token are the same value; one token, one role")
    for value, where in ((agent, agent_file), (admin, admin_file), (key, key_file)):
        if where is not None and len(value) < MIN_TOKEN_CHARS:
            raise SettingsError(f"{where} holds fewer than {MIN_TOKEN_CHARS} characters; delete it to make a new one")
    return Secrets(agent, admin, key.encode(), agent_file, admin_file)
