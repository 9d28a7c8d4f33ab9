"""The sandbox store: one copy per (Message-ID, recipient), local mailboxes get an inbox copy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflows.models import DeliveryRequest, EmailAddress, EmailDraft
from workflows.providers.base import PermanentDeliveryError
from workflows.providers.sandbox.provider import SandboxProvider
from workflows.providers.sandbox.store import SandboxStore
from workflows.store import open_database


def delivery(to: list[str], message_id: str = "<m1@mailgate.local>") -> DeliveryRequest:
    return DeliveryRequest(
        send_id="send-aaaaaaaaaaaaaaaaaaaa",
        mailbox="agent@mailgate.local",
        draft=EmailDraft(to=tuple(EmailAddress(address=a) for a in to), subject="Hello", body="Body"),
        message_id=message_id,
        date=datetime(2026, 11, 30, tzinfo=UTC),
    )


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> SandboxStore:
    """On both engines: SQLite in tmp_path, and a fresh PostgreSQL database."""
    store = SandboxStore(open_database(tmp_path / "sandbox.db", database_url))
    store.create_mailbox("agent@mailgate.local")
    store.create_mailbox("peer@mailgate.local")
    return store


async def test_a_repeated_delivery_of_the_same_message_id_adds_no_copy(store: SandboxStore) -> None:
    provider = SandboxProvider(store)
    request = delivery(["peer@mailgate.local", "bob@example.com"])
    for _ in range(3):
        await provider.send(request)
    copies = store.deliveries()
    assert sorted((c.recipient, c.local) for c in copies) == [
        ("bob@example.com", False),
        ("peer@mailgate.local", True),
    ]
    assert {c.message_id for c in copies} == {"<m1@mailgate.local>"}


def test_the_store_refuses_a_second_copy_for_the_same_recipient(store: SandboxStore) -> None:
    raw = b"Message-ID: <x@y.z>\r\nFrom: a@b.c\r\nTo: peer@mailgate.local\r\nSubject: s\r\n\r\nbody\r\n"
    assert store.deliver(raw, "a@b.c", ["peer@mailgate.local"]) == ["peer@mailgate.local"]
    assert store.deliver(raw, "a@b.c", ["peer@mailgate.local"]) == []
    assert len(store.deliveries("peer@mailgate.local")) == 1


def test_deliveries_filter_by_mailbox_as_sender_or_recipient(store: SandboxStore) -> None:
    raw = b"Message-ID: <q@y.z>\r\nFrom: x@example.com\r\nTo: peer@mailgate.local\r\nSubject: s\r\n\r\nb\r\n"
    store.deliver(raw, "x@example.com", ["peer@mailgate.local"])
    assert [d.recipient for d in store.deliveries("peer@mailgate.local")] == ["peer@mailgate.local"]
    assert [d.sender for d in store.deliveries("x@example.com")] == ["x@example.com"]
    assert store.deliveries("agent@mailgate.local") == []


async def test_a_send_without_recipients_fails_permanently(store: SandboxStore) -> None:
    request = delivery(["bob@example.com"])
    empty = request.model_copy(update={"draft": request.draft.model_copy(update={"to": ()})})
    with pytest.raises(PermanentDeliveryError):
        await SandboxProvider(store).send(empty)


def test_two_store_objects_on_one_file_see_each_other(tmp_path: Path, database_url: str | None) -> None:
    first = SandboxStore(open_database(tmp_path / "s.db", database_url))
    second = SandboxStore(open_database(tmp_path / "s.db", database_url))
    first.create_mailbox("agent@mailgate.local")
    assert second.is_local("AGENT@mailgate.local")
