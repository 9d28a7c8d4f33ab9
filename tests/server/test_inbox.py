"""The inbox service against a real Temporal server: read, thread, reply, hold, wait, intake."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from server.app import Mailgate
from server.errors import Conflict, InvalidInput, NotFound
from server.validation import AttachmentInput
from tests.support.histories import keep_history
from tests.support.inbox import approve, receive, sandbox, sent_send
from tests.support.wait import eventually, provisioned, wait_for_status
from workflows import ids
from workflows.mail.parsing import parse_email
from workflows.models import Decision
from workflows.read_models import EmailQuery, EmailSummary, IntakeConfig
from workflows.reply_wait import ReplyWaitWorkflow


async def test_check_read_reply_and_thread(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await receive(app, subject="Re: Re: Pricing", extra="Cc: Carol <carol@example.com>, " + mailbox + "\r\n")
    page = await app.inbox.check(mailbox)
    [email] = page.emails
    assert email.unread and email.subject == "Re: Re: Pricing" and email.snippet == "Can you help?"

    view = await app.inbox.read(mailbox, email.email_id)
    assert view.untrusted and "outside" in view.warning and view.text == "Can you help?"
    assert not (await app.inbox.check(mailbox)).emails[0].unread
    assert (await app.inbox.check(mailbox, unread_only=True)).emails == []

    sent = await app.inbox.reply(mailbox, email.email_id, "Sure, here is how.", reply_all=True)
    assert sent.status == "pending_approval"
    again = await app.inbox.reply(mailbox, email.email_id, "Sure, here is how.", reply_all=True)
    assert again.send_id == sent.send_id and again.deduplicated

    await app.sends.decide(sent.send_id, approve())
    await wait_for_status(app, sent.send_id, ["sent"])
    copies = app.sandbox.deliveries(mailbox)
    assert sorted(c.recipient for c in copies if c.message_id == sent.message_id) == [
        "bob@example.com",
        "carol@example.com",
    ]
    [mine] = (await sandbox(app).list_emails(mailbox, EmailQuery(folder="sent"))).emails
    ours = parse_email((await sandbox(app).fetch_email(mailbox, mine.email_id)).raw)
    assert ours.subject == "Re: Pricing"
    assert ours.in_reply_to == view.message_id
    assert ours.references == (view.message_id,)
    assert [a.address for a in ours.to] == ["bob@example.com"]
    assert [a.address for a in ours.cc] == ["carol@example.com"]
    # The reply quotes the original below its own text.
    assert ours.text.startswith("Sure, here is how.\n\nOn ") and "wrote:\n> Can you help?" in ours.text

    thread = await app.inbox.thread(mailbox, email.thread_id)
    assert [(m.folder, m.depth) for m in thread.messages] == [("inbox", 0), ("sent", 1)]
    assert thread.messages[1].parent_email_id == email.email_id


async def test_reply_headers_cannot_be_injected_from_inbound_mail(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await receive(
        app,
        subject="=?utf-8?q?Hi=0D=0ABcc:_evil@example.com?=",
        sender='"Eve\r\n Bcc: evil@example.com" <eve@example.com>',
        extra="Reply-To: =?utf-8?q?x=0D=0ABcc=3A_evil=40example.com?= <eve@example.com>\r\n",
    )
    [email] = (await app.inbox.check(mailbox)).emails
    sent = await app.inbox.reply(mailbox, email.email_id, "No.")
    state = await app.sends.status(sent.send_id)
    draft = state.original
    assert [a.address for a in draft.to] == ["eve@example.com"]
    assert "\n" not in draft.subject and "\r" not in draft.subject
    assert draft.bcc == () and draft.cc == ()
    for address in draft.to:
        assert "@" not in address.name and "\n" not in address.name


async def test_replying_to_an_email_with_no_valid_sender_is_refused(app: Mailgate) -> None:
    await receive(app, sender="undisclosed-recipients:;")
    [email] = (await app.inbox.check(app.settings.default_mailbox)).emails
    with pytest.raises(InvalidInput, match="not a valid address"):
        await app.inbox.reply(app.settings.default_mailbox, email.email_id, "hello?")


async def test_reading_unknown_things_says_what_to_do(app: Mailgate) -> None:
    with pytest.raises(NotFound, match="does not exist") as missing:
        await app.inbox.check("nobody@mailgate.local")
    assert "list_mailboxes" in missing.value.at("mcp")
    with pytest.raises(NotFound, match="no email 999999") as unknown:
        await app.inbox.read(app.settings.default_mailbox, "999999")
    assert "check_inbox" in unknown.value.at("mcp")
    with pytest.raises(NotFound, match="thread"):
        await app.inbox.thread(app.settings.default_mailbox, "thread-999999")
    with pytest.raises(InvalidInput, match="since"):
        await app.inbox.check(app.settings.default_mailbox, since="yesterday")


async def test_gated_all_holds_inbound_mail_until_a_human_releases_it(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="agent", role="agent")
    await receive(app, subject="Held one")
    assert (await app.inbox.check(mailbox)).emails == []
    [held] = await app.inbox.held(mailbox)
    assert held.subject == "Held one"
    with pytest.raises(NotFound):
        await app.inbox.read(mailbox, held.email_id)
    with pytest.raises(NotFound):
        await app.inbox.reply(mailbox, held.email_id, "hi")

    released = await app.inbox.decide_held(held.email_id, "release", "alice")
    assert released.mailbox == mailbox
    [visible] = (await app.inbox.check(mailbox)).emails
    assert visible.email_id == held.email_id
    assert await app.inbox.held(mailbox) == []

    await receive(app, subject="Held two")
    [second] = await app.inbox.held(mailbox)
    await app.inbox.decide_held(second.email_id, "discard", "alice", mailbox)
    assert [e.subject for e in (await app.inbox.check(mailbox)).emails] == ["Held one"]
    with pytest.raises(NotFound):
        await app.inbox.decide_held(second.email_id, "release", "alice", mailbox)


async def _answer(app: Mailgate, send_id: str, body: str = "Looks good.") -> None:
    state = await app.sends.status(send_id)
    await receive(app, subject="Re: Proposal", body=body, extra=f"In-Reply-To: {state.message_id}\r\n")


async def test_wait_for_reply_returns_the_reply_as_it_arrives_with_progress(
    app: Mailgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.reply_waits.PROGRESS_EVERY", 0.2)
    send_id = await sent_send(app)
    await receive(app, subject="Unrelated")  # not a reply: must not end the wait
    reports: list[tuple[float, float, str]] = []

    async def progress(done: float, total: float, message: str) -> None:
        reports.append((done, total, message))

    async def answer_later() -> None:
        await asyncio.sleep(1.0)
        await _answer(app, send_id)

    answering = asyncio.create_task(answer_later())
    outcome = await app.reply_waits.wait_for_reply(send_id, 5, progress)
    await answering
    assert outcome.status == "replied" and outcome.reply is not None
    assert outcome.reply.snippet == "Looks good."
    assert reports and all(total == 300 for _, total, _ in reports)
    assert outcome.waited_seconds < 10
    handle = app.client.get_workflow_handle_for(ReplyWaitWorkflow.run, ids.reply_wait_id(send_id))
    assert (await handle.result()).status == "replied"
    await keep_history(app, ids.reply_wait_id(send_id), "reply-wait-replied")


async def test_a_disconnected_waiter_gets_the_reply_that_came_meanwhile(app: Mailgate) -> None:
    send_id = await sent_send(app)
    waiting = asyncio.create_task(app.reply_waits.wait_for_reply(send_id, 60))
    handle = app.client.get_workflow_handle_for(ReplyWaitWorkflow.run, ids.reply_wait_id(send_id))

    async def running() -> bool:
        try:
            return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        except Exception:
            return False

    await eventually(running)
    waiting.cancel()  # the client goes away
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _answer(app, send_id, "Answered while you were away.")
    result = await asyncio.wait_for(handle.result(), 15)  # the wait in Temporal got it
    assert result.reply is not None and result.reply.snippet == "Answered while you were away."
    outcome = await app.reply_waits.wait_for_reply(send_id, 60)
    assert outcome.status == "replied" and outcome.reply is not None
    assert outcome.reply.email_id == result.reply.email_id


async def test_wait_for_reply_times_out_and_refuses_sends_that_never_went(app: Mailgate) -> None:
    send_id = await sent_send(app)
    outcome = await app.reply_waits.wait_for_reply(send_id, 0.03)
    assert outcome.status == "timeout" and "call wait_for_reply again" in outcome.next_step
    result = await asyncio.wait_for(
        app.client.get_workflow_handle_for(ReplyWaitWorkflow.run, ids.reply_wait_id(send_id)).result(), 15
    )
    assert result.status == "timeout"
    await keep_history(app, ids.reply_wait_id(send_id), "reply-wait-timeout")

    rejected = await app.sends.submit(
        mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject="No", body="no"
    )
    await app.sends.decide(rejected.send_id, Decision(decision="reject", approver="alice", reason="no"))
    with pytest.raises(Conflict, match="no reply can come"):
        await app.reply_waits.wait_for_reply(rejected.send_id, 1)
    with pytest.raises(InvalidInput, match="timeout_minutes"):
        await app.reply_waits.wait_for_reply(send_id, 0)


async def test_a_held_reply_wakes_the_wait_only_when_released(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    send_id = await sent_send(app)
    await app.mailboxes.set_mode(mailbox, "gated_all", actor="agent", role="agent")
    waiting = asyncio.create_task(app.reply_waits.wait_for_reply(send_id, 1))
    await asyncio.sleep(0.5)
    await _answer(app, send_id)
    await asyncio.sleep(1.0)
    assert not waiting.done()
    [held] = await app.inbox.held(mailbox)
    await app.inbox.decide_held(held.email_id, "release", "alice")
    outcome = await asyncio.wait_for(waiting, 15)
    assert outcome.status == "replied" and outcome.reply is not None and outcome.reply.email_id == held.email_id
    await keep_history(app, ids.watcher_workflow_id(mailbox), "watcher")


@workflow.defn(name="RecordIntake", sandboxed=False)
class RecordIntake:
    @workflow.run
    async def run(self, email: EmailSummary) -> str:
        return email.subject


async def test_each_inbound_email_starts_the_intake_workflow_once(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    queue = f"intake-{uuid.uuid4().hex}"
    await app.inbox.configure_watcher(mailbox, IntakeConfig(workflow="RecordIntake", task_queue=queue))
    async with Worker(app.client, task_queue=queue, workflows=[RecordIntake]):
        first = await receive(app, subject="Order 1")
        second = await receive(app, subject="Order 2")
        handles = [app.client.get_workflow_handle(ids.intake_workflow_id(mailbox, m)) for m in (first, second)]

        async def both_done() -> bool:
            try:
                return [await h.result() for h in handles] == ["Order 1", "Order 2"]
            except Exception:
                return False

        await eventually(both_done)
        # A retried dispatch (the same emails again) starts nothing new.
        from workflows.activities.inbox import InboxActivities
        from workflows.read_models import DispatchRequest

        emails = (await sandbox(app).list_emails(mailbox, EmailQuery(oldest_first=True))).emails
        await InboxActivities(app.client, app.providers).dispatch(
            DispatchRequest(
                mailbox=mailbox, intake=IntakeConfig(workflow="RecordIntake", task_queue=queue), inbound=emails
            ),
        )
        runs = [w async for w in app.client.list_workflows(f"TaskQueue = '{queue}'")]
        assert len(runs) == 2


async def test_attachments_are_sent_and_downloaded(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    peer = f"peer-{uuid.uuid4().hex[:8]}@mailgate.local"
    await app.mailboxes.create(peer, created_by="tests", mode="gated_send")
    await provisioned(app, peer)
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    data = bytes(range(256)) * 4
    sent = await app.sends.submit(
        mailbox=mailbox,
        to=[peer],
        subject="Files",
        body="Attached.",
        attachments=[
            AttachmentInput(
                filename="Übersicht März.pdf",
                content_type="application/pdf",
                content_base64=base64.b64encode(data).decode(),
            ),
        ],
    )
    state = await wait_for_status(app, sent.send_id, ["sent"])
    assert state.original.attachments[0].size == len(data)
    assert state.original.attachments[0].content_b64 == ""  # states stay small
    [email] = (await app.inbox.check(peer)).emails
    assert email.has_attachments
    view = await app.inbox.read(peer, email.email_id)
    assert [(a.filename, a.size) for a in view.attachments] == [("Übersicht März.pdf", len(data))]
    part = await app.inbox.attachment(peer, email.email_id, "Übersicht März.pdf")
    assert part.content == data
    with pytest.raises(NotFound, match="Übersicht"):
        await app.inbox.attachment(peer, email.email_id, "missing.pdf")


@pytest.mark.parametrize(
    ("attachment", "problem"),
    [
        (AttachmentInput(filename="a.bin", content_base64="not base64!"), "base64"),
        (AttachmentInput(filename="../etc/passwd", content_base64="AAAA"), "plain file name"),
        (AttachmentInput(filename="a\r\nb.txt", content_base64="AAAA"), "control character"),
        (AttachmentInput(filename="a.txt", content_type="multipart/mixed", content_base64="AAAA"), "MIME type"),
        (
            AttachmentInput(filename="big.bin", content_base64=base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()),
            "1 MiB",
        ),
    ],
)
async def test_bad_attachments_are_refused_and_nothing_is_started(
    app: Mailgate, attachment: AttachmentInput, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        await app.sends.submit(
            mailbox=app.settings.default_mailbox, to=["b@example.com"], subject="s", body="b", attachments=[attachment]
        )
    assert (await app.sends.search(mailbox=app.settings.default_mailbox)).sends == []


async def test_an_email_too_big_for_temporal_is_refused_with_the_reason(app: Mailgate) -> None:
    big = base64.b64encode(b"x" * 1000 * 1000).decode()
    with pytest.raises(InvalidInput, match="2 MB"):
        await app.sends.submit(
            mailbox=app.settings.default_mailbox,
            to=["b@example.com"],
            subject="s",
            body="\n" * 500_000,
            attachments=[AttachmentInput(filename="a.bin", content_base64=big)],
        )


@pytest.mark.parametrize(
    ("send_at", "problem"),
    [
        ("tomorrow", "ISO 8601"),
        ("2030-01-01T09:00:00", "UTC offset"),
        ("2020-01-01T09:00:00Z", "in the past"),
        # A stable id: a computed timestamp in it would differ between pytest-xdist workers.
        pytest.param((datetime.now(UTC) + timedelta(days=400)).isoformat(), "365 days", id="400 days ahead-365 days"),
    ],
)
async def test_bad_send_times_are_refused(app: Mailgate, send_at: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        await app.sends.submit(
            mailbox=app.settings.default_mailbox, to=["b@example.com"], subject="s", body="b", send_at=send_at
        )


async def test_a_scheduled_send_waits_for_its_time_and_can_be_cancelled(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    at = datetime.now(UTC) + timedelta(seconds=2)
    sent = await app.sends.submit(
        mailbox=mailbox, to=["b@example.com"], subject="Later", body="b", send_at=at.astimezone().isoformat()
    )
    assert sent.status == "scheduled" and sent.scheduled_for == at.replace(microsecond=at.microsecond)
    assert (await app.sends.status(sent.send_id)).status == "scheduled"
    cancelled = await app.sends.submit(
        mailbox=mailbox, to=["b@example.com"], subject="Never", body="b", send_at=(at + timedelta(hours=1)).isoformat()
    )
    assert (await app.sends.cancel(cancelled.send_id)).status == "cancelled"
    state = await wait_for_status(app, sent.send_id, ["sent"], timeout=20)
    assert state.delivered_at is not None and state.delivered_at >= at
    assert [d.subject for d in app.sandbox.deliveries(mailbox)] == ["Later"]


async def test_a_scheduled_reply_waits_for_its_time_and_stays_in_the_thread(app: Mailgate) -> None:
    mailbox = app.settings.default_mailbox
    await app.mailboxes.set_mode(mailbox, "autonomous", actor="ops", role="human")
    parent = await receive(app, subject="Meeting")
    [email] = (await app.inbox.check(mailbox)).emails
    at = datetime.now(UTC) + timedelta(seconds=2)
    sent = await app.inbox.reply(mailbox, email.email_id, "Tuesday works.", send_at=at.isoformat())
    assert sent.status == "scheduled" and sent.scheduled_for == at
    state = await wait_for_status(app, sent.send_id, ["sent"], timeout=20)
    assert state.delivered_at is not None and state.delivered_at >= at
    assert state.original.in_reply_to == parent and state.original.subject == "Re: Meeting"
