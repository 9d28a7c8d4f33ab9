"""People and agents in the shared database: added through one process, known to every other."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.identities import IdentityError
from server.sqlite_identities import open_identities


def test_a_person_and_an_agent_added_at_one_door_work_at_another(tmp_path: Path, postgres_url: str) -> None:
    here, there = open_identities(tmp_path / "a", postgres_url), open_identities(tmp_path / "b", postgres_url)
    person = here.add_person("Ada@Example.org", approves=["agent@mailgate.local"])
    agent = here.add_agent("helper", mailboxes=["agent@mailgate.local"])
    assert there.person_by_token(person.api_token) == there.person("ada@example.org")
    assert there.check_password("ada@example.org", person.password) is not None
    found = there.agent_by_token(agent.token)
    assert found is not None and found.name == "helper"
    with pytest.raises(IdentityError, match="already exists"):
        there.add_person("ada@example.org")
    assert [p.email for p in here.people()] == ["ada@example.org"]
    assert not (tmp_path / "a" / "identities.db").exists()
