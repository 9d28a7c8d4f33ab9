"""OAuth grants in the shared database: one login serves every process of a deployment, and the
row is as sealed as the file (encrypted, bound to the secret key and the mailbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.providers.oauth import Grant, GrantStore, ReauthNeeded
from workflows.store import open_database


def test_a_grant_saved_by_one_process_is_used_by_another(tmp_path: Path, postgres_url: str) -> None:
    def store(node: str, key: bytes = b"k" * 32) -> GrantStore:
        return GrantStore(tmp_path / node, key, open_database(tmp_path / "g.db", postgres_url, name="oauth"))

    store("a").save("A@example.com", Grant(refresh_token="refresh-secret-value", access_token="access-secret"))
    loaded = store("b").load("a@example.com")
    assert loaded is not None and loaded.refresh_token == "refresh-secret-value"
    raw = open_database(tmp_path / "g.db", postgres_url, name="oauth").query("SELECT blob FROM grants")[0][0]
    assert b"refresh-secret-value" not in bytes(raw)
    with pytest.raises(ReauthNeeded, match="cannot be decrypted"):
        store("c", b"x" * 32).load("a@example.com")
    assert not (tmp_path / "a" / "oauth").exists()
    assert store("b").forget("a@example.com") and store("a").load("a@example.com") is None
    assert not store("a").forget("a@example.com")
