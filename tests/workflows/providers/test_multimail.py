"""The MultiMail provider, through mailgate's own client, against the local contract server.

Every request the provider makes and every answer the server gives is checked against MultiMail's
OpenAPI document (``tests/peers/multimail_openapi.py``): the fixture fails a test with any drift.
"""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.peers.multimail_fake import FakeServer
from workflows.inbox import EmailQuery
from workflows.models import Attachment, DeliveryRequest, EmailAddress, EmailDraft
from workflows.parsing import parse_email
from workflows.providers.base import EmailNotFound, PermanentDeliveryError, TemporaryDeliveryError
from workflows.providers.multimail import MultiMailConfig, MultiMailProvider, message_id_of
from workflows.providers.multimail_client import MultiMailClient

ADDRESS = "agent@mm.example"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    running = FakeServer().start()
    yield running
    running.stop()
    assert running.fake.violations == []


def provider_for(server: FakeServer, mode: str = "autonomous", key: str = "mm_live_sender") -> MultiMailProvider:
    box = server.fake.add_mailbox(ADDRESS, mode)
    config = MultiMailConfig(address=ADDRESS, mailbox_id=box, base_url=server.url, decision_poll=timedelta(seconds=1))
    return MultiMailProvider(config, key)


def request(n: int = 1, date: datetime | None = None, **draft: object) -> DeliveryRequest:
    values: dict[str, object] = {
        "to": (EmailAddress(address="carol@example.org"),),
        "bcc": (EmailAddress(address="audit@example.org"),),
        "subject": f"Offer {n}",
        "body": "Dear Carol,\n\n**terms** attached.",
        **draft,
    }
    return DeliveryRequest(
        send_id=f"send-mm{n}",
        mailbox=ADDRESS,
        draft=EmailDraft(**values),  # type: ignore[arg-type]
        message_id=f"<send-mm{n}@mm.example>",
        date=date or datetime.now(UTC),
    )


async def test_send_is_idempotent_by_the_send_id(server: FakeServer) -> None:
    provider = provider_for(server)
    pdf = Attachment(filename="terms.pdf", content_type="application/pdf", content_b64="JVBERi0=", size=5)
    first = await provider.send(request(attachments=(pdf,)))
    again = await provider.send(request(attachments=(pdf,)))  # a retried activity
    assert first.provider_id == again.provider_id and not first.held
    outbound = [e for e in server.fake.emails.values() if e["direction"] == "outbound"]
    assert len(outbound) == 1
    email = outbound[0]
    assert email["to"] == ["carol@example.org"] and email["bcc"] == ["audit@example.org"]
    assert email["tags"] == {"mailgate_send_id": "send-mm1"} and email["delivered_at"]
    sends = [body for method, path, body in server.fake.requests if path.endswith("/send")]
    assert {body["idempotency_key"] for body in sends} == {"send-mm1"}
    await provider.aclose()


async def test_gated_mailbox_holds_then_its_human_decides(server: FakeServer) -> None:
    provider = provider_for(server, "gated_send")
    receipt = await provider.send(request(2))
    assert receipt.held and receipt.recheck_after == timedelta(seconds=1)
    assert (await provider.held_outcome(ADDRESS, receipt.provider_id)).status == "pending"
    server.fake.decide(receipt.provider_id, "approve", by="ops@example.com")
    outcome = await provider.held_outcome(ADDRESS, receipt.provider_id)
    assert outcome.status == "sent" and outcome.decided_by == "ops@example.com"
    # Too late to cancel: MultiMail says 409, and the outcome stays "sent".
    assert (await provider.cancel_held(ADDRESS, receipt.provider_id)).status == "sent"

    rejected = await provider.send(request(3))
    server.fake.decide(rejected.provider_id, "reject")
    assert (await provider.held_outcome(ADDRESS, rejected.provider_id)).status == "rejected"

    withdrawn = await provider.send(request(4))
    assert (await provider.cancel_held(ADDRESS, withdrawn.provider_id)).status == "cancelled"
    await provider.aclose()


async def test_pending_list_is_used_with_an_oversight_key(server: FakeServer) -> None:
    server.fake.keys["mm_live_watcher"] = {"read", "oversight"}
    sender = provider_for(server, "gated_send")
    receipt = await sender.send(request(5))
    watcher = MultiMailProvider(sender.config, "mm_live_watcher")
    assert (await watcher.held_outcome(ADDRESS, receipt.provider_id)).status == "pending"
    assert ("GET", "/v1/oversight/pending", {}) in server.fake.requests
    await sender.aclose()
    await watcher.aclose()


async def test_reading_threads_and_replies(server: FakeServer) -> None:
    provider = provider_for(server)
    box = provider.config.mailbox_id
    start = await provider.changes(ADDRESS, None)
    sent = await provider.send(request(6))
    thread = server.fake.emails[sent.provider_id]["thread_id"]
    answer = server.fake.add_email(
        box,
        "inbound",
        from_="Carol <carol@example.org>",
        to=[ADDRESS],
        subject="Re: Offer 6",
        markdown="Looks good. See the file.",
        thread_id=thread,
        attachments=[{"name": "signed.pdf", "size": 5, "content_type": "application/pdf"}],
        files={"signed.pdf": base64.b64encode(b"%PDF-").decode()},
    )
    changes = await provider.changes(ADDRESS, start.cursor)
    assert [e.email_id for e in changes.emails] == [answer["id"]]
    assert (await provider.changes(ADDRESS, changes.cursor)).emails == ()
    page = await provider.list_emails(ADDRESS, EmailQuery())
    assert [e.subject for e in page.emails] == ["Re: Offer 6"] and page.emails[0].unread
    found = await provider.find_reply(ADDRESS, "<send-mm6@mm.example>")
    assert found is not None and found.email_id == answer["id"]
    stored = await provider.fetch_email(ADDRESS, answer["id"])
    parsed = parse_email(stored.raw)
    assert parsed.subject == "Re: Offer 6" and parsed.sender is not None
    assert parsed.sender.address == "carol@example.org"
    assert [a.filename for a in parsed.attachments] == ["signed.pdf"]
    assert server.fake.emails[answer["id"]]["status"] == "read"  # MultiMail marks it read when fetched
    whole = await provider.list_emails(ADDRESS, EmailQuery(folder=None, thread_id=thread, oldest_first=True))
    assert [e.folder for e in whole.emails] == ["sent", "inbox"]
    # A reply goes through MultiMail's reply endpoint, with the idempotency key.
    reply = request(
        7,
        to=(EmailAddress(address="carol@example.org"),),
        subject="Re: Offer 6",
        in_reply_to=message_id_of(answer["id"]),
    )
    first = await provider.send(reply)
    again = await provider.send(reply)
    assert first.provider_id == again.provider_id
    replies = [(path, body) for _, path, body in server.fake.requests if "/reply/" in path]
    assert len(replies) == 2 and all(body["idempotency_key"] == "send-mm7" for _, body in replies)
    assert server.fake.emails[first.provider_id]["thread_id"] == thread
    await provider.aclose()


async def test_errors_are_classified(server: FakeServer) -> None:
    provider = provider_for(server)
    server.fake.fail_next = [429]
    with pytest.raises(TemporaryDeliveryError, match="rate limit"):
        await provider.send(request(8))
    server.fake.fail_next = [503]
    with pytest.raises(TemporaryDeliveryError, match="503"):
        await provider.send(request(8))
    await provider.send(request(8))
    server.fake.mailboxes[provider.config.mailbox_id]["oversight_mode"] = "read_only"
    with pytest.raises(PermanentDeliveryError, match=r"403.*read_only"):
        await provider.send(request(9))
    bad = MultiMailProvider(provider.config, "mm_live_wrong")
    with pytest.raises(PermanentDeliveryError, match="401"):
        await bad.send(request(10))
    down = MultiMailProvider(provider.config.model_copy(update={"base_url": "http://127.0.0.1:9"}), "k")
    with pytest.raises(TemporaryDeliveryError, match="cannot reach"):
        await down.send(request(11))
    # Ids go into URL paths: anything but id characters is refused before a request is made.
    with pytest.raises(EmailNotFound):
        await provider.fetch_email(ADDRESS, "../../account")
    for client in (provider, bad, down):
        await client.aclose()


def test_no_retired_sdk_is_a_dependency(server: FakeServer) -> None:
    """MultiMail's Python SDK is retired: mailgate talks through its own client, over httpx."""
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert not any(d.startswith("multimail") for d in project["project"]["dependencies"])
    provider = provider_for(server)
    assert isinstance(provider.client, MultiMailClient)
    assert isinstance(provider.client._http, httpx.AsyncClient)
