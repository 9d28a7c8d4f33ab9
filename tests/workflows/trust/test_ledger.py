"""The ledger kept outside Temporal (workflows/trust/ledger.py): claims, records, the checks on them."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workflows.models import Admission, MailboxConfig
from workflows.trust.ledger import open_ledger, stricter_admission, verified_config

BOX = "Agent@Mailgate.Local"


def test_a_send_is_claimed_once_and_only_its_run_may_go_on(tmp_path: Path, database_url: str | None) -> None:
    ledger = open_ledger(tmp_path, database_url)
    now = datetime.now(UTC)
    assert ledger.delivery_problem("send-1", "run-a") is None
    assert ledger.claim_delivery("send-1", "run-a", BOX, now) is None
    # A retry of the same run keeps its claim; any other run under the send id is refused.
    assert ledger.claim_delivery("send-1", "run-a", BOX, now) is None
    refused = ledger.claim_delivery("send-1", "run-b", BOX, now)
    assert refused is not None and "another run of its workflow" in refused
    assert ledger.delivery_problem("send-1", "run-b") == refused
    assert ledger.delivery_problem("send-1", "run-a") is None
    # Claims count towards rate limits, the send asking left out.
    assert ledger.claim_delivery("send-2", "run-c", BOX.lower(), now) is None
    assert ledger.deliveries_since(BOX, now - timedelta(hours=1), excluding="send-2") == [now]
    if database_url is None:
        assert stat.S_IMODE((tmp_path / "ledger.db").stat().st_mode) == 0o600
    else:
        assert not (tmp_path / "ledger.db").exists()  # in PostgreSQL, shared by every process


def test_configurations_are_recorded_and_adopted_once(tmp_path: Path, database_url: str | None) -> None:
    ledger = open_ledger(tmp_path, database_url)
    made = MailboxConfig(address=BOX, mode="gated_send", approvers=("boss@example.org",))
    ledger.record_config(made)
    older = MailboxConfig(address="old@mailgate.local", mode="monitored")
    assert ledger.adopt([made.model_copy(update={"mode": "autonomous"}), older]) == ["old@mailgate.local"]
    assert ledger.mailbox_config(BOX.lower()) == made  # a record is never replaced by adoption
    assert ledger.mailbox_config("old@mailgate.local") == older
    assert ledger.adopt([MailboxConfig(address="late@mailgate.local", mode="autonomous")]) == []
    assert ledger.mailbox_config("late@mailgate.local") is None
    ledger.record_upgrade("req1", BOX, "monitored")
    assert ledger.upgrade_mode("req1") == "monitored"
    assert ledger.upgrade_mode("nope") is None


def test_what_a_mailbox_workflow_says_is_checked_against_the_record() -> None:
    recorded = MailboxConfig(address=BOX, mode="gated_send", deny=("evil.example",))
    assert verified_config(recorded, recorded) == (recorded, None)
    forged = recorded.model_copy(update={"mode": "autonomous", "deny": (), "approvers": ("mallory",)})
    config, problem = verified_config(recorded, forged)
    assert config == recorded and problem is not None
    # Tightened in Temporal (an agent's update the front door did not record yet): the stricter mode.
    config, _ = verified_config(recorded, recorded.model_copy(update={"mode": "read_only"}))
    assert config.mode == "read_only"
    # No record at all: gated at least.
    config, problem = verified_config(None, forged)
    assert config.mode == "gated_send" and problem is not None


def test_the_stricter_admission_wins() -> None:
    ok = Admission(outcome="ok", mode="autonomous")
    gated = Admission(outcome="needs_approval", mode="gated_send", reason="mailbox is now gated_send")
    assert stricter_admission(ok, gated, "forged").reason == "mailbox is now gated_send (forged)"
    blocked = Admission(outcome="blocked", mode="read_only", reason="x")
    assert stricter_admission(blocked, ok, None) == blocked
    assert stricter_admission(ok, Admission(outcome="ok", mode="monitored"), None).mode == "monitored"
