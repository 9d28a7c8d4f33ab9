"""The MultiMail provider, through mailgate's own client, against the local contract server.

Every request the provider makes and every answer the server gives is checked against MultiMail's
OpenAPI document (``tests/support/peers/multimail_openapi.py``): the fixture fails a test with any drift.
"""

from __future__ import annotations

import base64
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import multimail_openapi
from tests.support.peers.multimail import ADDRESS, provider_for
from tests.support.peers.multimail_fake import FakeServer
from workflows.mail.parsing import parse_email
from workflows.models import Attachment, DeliveryRequest, EmailAddress, EmailDraft
from workflows.providers.base import EmailNotFound, PermanentDeliveryError, TemporaryDeliveryError
from workflows.providers.multimail.account import message_id_of
from workflows.providers.multimail.client import Email, MultiMailClient
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.providers.multimail.sending import outcome_of
from workflows.read_models import EmailQuery


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
        draft=EmailDraft(**values),
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
    project = tomllib.loads((Path(__file__).parents[4] / "pyproject.toml").read_text())
    assert not any(d.startswith("multimail") for d in project["project"]["dependencies"])
    provider = provider_for(server)
    assert isinstance(provider.client, MultiMailClient)
    assert isinstance(provider.client._http, httpx.AsyncClient)


# --- issue 23: MultiMail as its document describes it ---------------------------------------------


def inbound(server: FakeServer, provider: MultiMailProvider, **fields: object) -> dict[str, object]:
    values: dict[str, object] = {"from_": "Carol <carol@example.org>", "to": [ADDRESS], "subject": "Hello"}
    return server.fake.add_email(provider.config.mailbox_id, "inbound", **{**values, **fields})


async def test_attachment_names_are_percent_encoded_and_fetched_on_demand(server: FakeServer) -> None:
    provider = provider_for(server)
    names = ["Invoice #12.pdf", "why?.txt", "100%.txt", "a/b.txt"]
    files = {name: base64.b64encode(f"content of {name}".encode()).decode() for name in names}
    email = inbound(
        server,
        provider,
        attachments=[{"name": n, "size": len(f"content of {n}"), "content_type": "text/plain"} for n in names],
        files=files,
    )
    stored = await provider.fetch_email(ADDRESS, str(email["id"]))
    shown = [a.filename for a in parse_email(stored.raw).attachments]
    assert shown == ["Invoice #12.pdf", "why?.txt", "100%.txt", "b.txt"]  # reading drops a directory part
    assert list(stored.attachment_sizes.values()) == [len(f"content of {n}") for n in names]
    # Reading the email downloads nothing: an attachment is fetched when one is asked for.
    assert not [p for _, p, _ in server.fake.requests if "/attachments/" in p]
    for index, name in enumerate(names, 1):
        assert await provider.fetch_attachment(ADDRESS, str(email["id"]), index) == f"content of {name}".encode()
    await provider.aclose()


async def test_large_attachments_come_through_a_presigned_url(server: FakeServer) -> None:
    provider = provider_for(server)
    big = bytes(range(256)) * 400  # 102,400 bytes: over MultiMail's 50 KB inline limit
    email = inbound(
        server,
        provider,
        attachments=[{"name": "scan.pdf", "size": len(big), "content_type": "application/pdf"}],
        files={"scan.pdf": base64.b64encode(big).decode()},
    )
    stored = await provider.fetch_email(ADDRESS, str(email["id"]))  # one large attachment breaks nothing
    assert stored.attachment_sizes == {"scan.pdf": len(big)}
    assert await provider.fetch_attachment(ADDRESS, str(email["id"]), 1) == big
    server.fake.attachment_redirects = True  # the other documented form: a redirect to the URL
    assert await provider.fetch_attachment(ADDRESS, str(email["id"]), 1) == big
    await provider.aclose()


async def test_inbound_pages_are_walked_oldest_first_without_loss(server: FakeServer) -> None:
    provider = provider_for(server)
    start = await provider.changes(ADDRESS, None)
    arrived = [str(inbound(server, provider, subject=f"Mail {n}")["id"]) for n in range(7)]
    seen, cursor = [], start.cursor
    for _ in range(5):
        changes = await provider.changes(ADDRESS, cursor, limit=3)
        seen += [e.email_id for e in changes.emails]
        cursor = changes.cursor
        if not changes.more:
            break
    assert seen == arrived
    assert (await provider.changes(ADDRESS, cursor, limit=3)).emails == ()
    await provider.aclose()


async def test_mail_held_at_multimail_is_seen_once_its_human_lets_it_in(server: FakeServer) -> None:
    provider = provider_for(server, "gated_all")
    start = await provider.changes(ADDRESS, None)
    held = str(inbound(server, provider, subject="Held")["id"])
    after = await provider.changes(ADDRESS, start.cursor)
    assert after.emails == ()  # MultiMail holds it: invisible, but not forgotten
    later = str(inbound(server, provider, subject="Also held")["id"])
    server.fake.decide(later, "approve")
    server.fake.decide(held, "approve")
    first = await provider.changes(ADDRESS, after.cursor)
    assert sorted(e.email_id for e in first.emails) == sorted([held, later])
    assert (await provider.changes(ADDRESS, first.cursor)).emails == ()
    await provider.aclose()


async def test_approved_at_multimail_is_sent_here_even_before_delivery(server: FakeServer) -> None:
    provider = provider_for(server, "gated_send")
    receipt = await provider.send(request(20))
    server.fake.decide(receipt.provider_id, "approve", by="ops@example.com")
    assert server.fake.emails[receipt.provider_id]["delivered_at"] is None  # the delivery report comes later
    outcome = await provider.held_outcome(ADDRESS, receipt.provider_id)
    assert (outcome.status, outcome.decided_by) == ("sent", "ops@example.com")
    # The approval window ends: the cancel comes too late, and the send is reported sent, not expired.
    assert (await provider.cancel_held(ADDRESS, receipt.provider_id)).status == "sent"
    await provider.aclose()


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"status": "pending_send_approval"}, "pending"),
        ({"status": "spam_flagged"}, "pending"),
        ({"status": "spam_quarantined"}, "failed"),
        ({"status": "send_failed"}, "failed"),
        ({"status": "rejected"}, "rejected"),
        ({"status": "cancelled"}, "cancelled"),
        ({"status": "read", "approved_at": "2026-12-01T10:00:00Z", "approved_by": "ops@example.com"}, "sent"),
        ({"status": "read", "approved_at": "2026-12-01T10:00:00Z", "bounced_at": "2026-12-01T10:01:00Z"}, "sent"),
    ],
)
def test_held_outcomes_follow_the_documented_fields(fields: dict[str, str], status: str) -> None:
    assert outcome_of(Email.model_validate({"id": "em_1", **fields})).status == status


async def test_limits_follow_the_document(server: FakeServer) -> None:
    provider = provider_for(server, "gated_all")
    for n in range(130):
        inbound(server, provider, subject=f"Held {n}")
    held = await provider.list_emails(ADDRESS, EmailQuery(held=True, limit=500))  # as `inbound list` asks
    assert len(held.emails) == 130
    with pytest.raises(PermanentDeliveryError, match="262144"):
        await provider.send(request(21, body="x" * 262_145))
    assert not [p for _, p, _ in server.fake.requests if p.endswith("/send")]
    await provider.aclose()


async def test_reply_edits_to_recipients_or_subject_are_kept(server: FakeServer) -> None:
    provider = provider_for(server)
    parent = inbound(server, provider, subject="Quote")
    edited = request(
        22,
        to=(EmailAddress(address="dave@example.org"),),
        subject="Re: Quote (revised)",
        in_reply_to=message_id_of(str(parent["id"])),
    )
    receipt = await provider.send(edited)
    email = server.fake.emails[receipt.provider_id]
    assert email["to"] == ["dave@example.org"] and email["subject"] == "Re: Quote (revised)"
    assert not [p for _, p, _ in server.fake.requests if "/reply/" in p]
    await provider.aclose()


async def test_an_identical_reply_within_60_seconds_waits_and_then_goes(server: FakeServer) -> None:
    provider = provider_for(server)
    parent = inbound(server, provider, subject="Quote")
    same: dict[str, Any] = {"to": (EmailAddress(address="carol@example.org"),), "subject": "Re: Quote"}
    first = await provider.send(request(23, in_reply_to=message_id_of(str(parent["id"])), **same))
    second = request(24, in_reply_to=message_id_of(str(parent["id"])), **same)  # another send, same words
    with pytest.raises(TemporaryDeliveryError, match="60 seconds"):
        await provider.send(second)
    server.fake.move_clock(61)
    receipt = await provider.send(second)  # the activity's retry
    assert receipt.provider_id != first.provider_id
    await provider.aclose()


async def test_a_retry_after_24_hours_looks_before_it_sends(server: FakeServer) -> None:
    provider = provider_for(server)
    late = request(25, date=datetime.now(UTC) - timedelta(hours=25))
    first = await provider.send(late)
    server.fake.move_clock(25 * 3600)  # MultiMail has forgotten the idempotency key
    again = await provider.send(late)
    assert again.provider_id == first.provider_id
    assert len([e for e in server.fake.emails.values() if e["direction"] == "outbound"]) == 1
    await provider.aclose()


async def test_drift_from_the_document_is_caught(server: FakeServer) -> None:
    """The contract check is not circular: a request outside the document is a violation."""
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": "Bearer mm_live_sender"}) as http:
        box = server.fake.add_mailbox("other@mm.example")
        await http.get(f"/v1/mailboxes/{box}/emails", params={"limit": 500})
        await http.post(f"/v1/mailboxes/{box}/send", json={"to": ["a@example.org"], "subject": "s", "body": "b"})
    assert any("limit" in v for v in server.fake.violations)
    assert any("markdown" in v for v in server.fake.violations)
    server.fake.violations.clear()
    # And the other side: an answer outside the document (a status MultiMail does not have).
    email = {"id": "em_1", "status": "sent", "received_at": "2026-12-01T10:00:00Z"}
    path = "/v1/mailboxes/mb_1/emails/em_1"
    assert multimail_openapi.response_problems("GET", path, 200, email)
    assert multimail_openapi.response_problems("GET", path, 418, None)
    assert not multimail_openapi.response_problems("GET", path, 200, {**email, "status": "read"})


def test_a_status_mailgate_does_not_know_waits_with_a_note() -> None:
    known = outcome_of(Email.model_validate({"id": "em_1", "status": "pending_scan"}))
    assert (known.status, known.note) == ("pending", "")
    unknown = outcome_of(Email.model_validate({"id": "em_1", "status": "pending_legal_review"}))
    assert unknown.status == "pending" and "'pending_legal_review'" in unknown.note and "does not know" in unknown.note


async def test_an_attachment_named_dots_is_not_found_instead_of_fetching_the_email_again(server: FakeServer) -> None:
    """A sender names an attachment '..': its URL would walk up to the email itself."""
    provider = provider_for(server)
    email = inbound(
        server,
        provider,
        attachments=[{"name": "..", "size": 3, "content_type": "text/plain"}],
        files={"..": base64.b64encode(b"abc").decode()},
    )
    with pytest.raises(EmailNotFound, match="cannot be fetched"):
        await provider.fetch_attachment(ADDRESS, str(email["id"]), 1)
    assert [p for m, p, _ in server.fake.requests if m == "GET"].count(
        f"/v1/mailboxes/{email['mailbox_id']}/emails/{email['id']}"
    ) == 1
    await provider.aclose()
