"""With a shared database, a session signed out through one front door is refused by every other."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from server.credentials import load_secrets
from server.settings import Settings
from server.web.sessions import SessionCodec


def test_a_sign_out_at_one_door_holds_at_another(tmp_path: Path, postgres_url: str) -> None:
    doors = [Settings(data_dir=tmp_path / name, database_url=SecretStr(postgres_url)) for name in ("a", "b")]
    codecs = [SessionCodec(load_secrets(settings), settings) for settings in doors]
    codecs[0].revoked.revoke("session-1", until=2**40)
    assert codecs[1].revoked.is_revoked("session-1")
    assert not codecs[1].revoked.is_revoked("session-2")
    assert not (tmp_path / "b" / "sessions.db").exists()
