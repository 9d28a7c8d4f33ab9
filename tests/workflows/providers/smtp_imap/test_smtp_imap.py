"""The SMTP/IMAP provider against real peers: Dovecot for IMAP, aiosmtpd (AUTH, STARTTLS) for SMTP."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import ADDRESS, file_into_sent, imap_append, inbound, make_provider
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.wait import eventually
from workflows.models import Attachment, DeliveryRequest, EmailAddress, EmailDraft
from workflows.providers.base import PermanentDeliveryError, TemporaryDeliveryError
from workflows.providers.smtp_imap.imap import ImapSession
from workflows.providers.smtp_imap.provider import SmtpImapProvider
from workflows.read_models import EmailQuery


def request(n: int = 1, **draft: object) -> DeliveryRequest:
    values: dict[str, object] = {
        "to": (EmailAddress(address="carol@example.org", name="Carol"),),
        "cc": (EmailAddress(address="dave@example.org"),),
        "bcc": (EmailAddress(address="erin@example.org"),),
        "subject": f"Quarterly numbers {n}",
        "body": "Hello Carol,\nthe numbers are attached.\n",
        **draft,
    }
    return DeliveryRequest(
        send_id=f"send-test{n}",
        mailbox=ADDRESS,
        draft=EmailDraft(**values),
        message_id=f"<send-test{n}@example.test>",
        date=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    )


async def sent_folder(server: Dovecot) -> list[bytes]:
    from workflows.providers.endpoints import parse_endpoint

    session = await ImapSession.open(parse_endpoint(f"imap://alice@127.0.0.1:{server.port}", "imap"), "secret1", None)
    try:
        state = await session.select("Sent")
        if not state.exists:
            return []
        return [f.literals[0] for f in await session.fetch(await session.uids_from(1), "(UID BODY.PEEK[])")]
    finally:
        await session.close()


async def test_send_goes_out_once_with_exactly_the_approved_envelope(
    provider: SmtpImapProvider, smtp_peer: SmtpPeer, dovecot: Dovecot
) -> None:
    await provider.create_mailbox(ADDRESS)
    receipt = await provider.send(request())
    assert receipt.message_id == "<send-test1@example.test>"
    [got] = smtp_peer.sink.received
    assert got.mail_from == ADDRESS
    assert got.rcpt_tos == ["carol@example.org", "dave@example.org", "erin@example.org"]
    assert b"erin@example.org" not in got.data  # Bcc: envelope only
    # A copy went to Sent on the server, and the index has it as sent mail.
    copies = await sent_folder(dovecot)
    assert len(copies) == 1 and b"<send-test1@example.test>" in copies[0]
    page = await provider.list_emails(ADDRESS, EmailQuery(folder="sent"))
    assert [e.message_id for e in page.emails] == ["<send-test1@example.test>"]
    # Asked again (a retried activity), it finds the Message-ID in Sent and sends nothing.
    await provider.send(request())
    assert len(smtp_peer.sink.received) == 1
    assert len(await sent_folder(dovecot)) == 1


async def test_envelope_follows_edits_and_attachments_survive(provider: SmtpImapProvider, smtp_peer: SmtpPeer) -> None:
    pdf = Attachment(filename="zahlen-ü.pdf", content_type="application/pdf", content_b64="JVBERi0=", size=5)
    await provider.send(request(2, to=(EmailAddress(address="frank@example.org"),), cc=(), bcc=(), attachments=(pdf,)))
    [got] = smtp_peer.sink.received
    assert got.rcpt_tos == ["frank@example.org"]
    stored = await provider.list_emails(ADDRESS, EmailQuery(folder="sent"))
    assert stored.emails[0].has_attachments


async def test_inbox_reads_threads_and_seen_flags(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    await provider.create_mailbox(ADDRESS)
    await provider.send(request(3))
    reply = inbound(
        1,
        subject="Re: Quarterly numbers 3",
        extra="In-Reply-To: <send-test3@example.test>\r\nReferences: <send-test3@example.test>\r\n",
    )
    imap_append(dovecot, "INBOX", reply)
    imap_append(dovecot, "INBOX", inbound(2, subject="Unrelated"), flags="\\Seen")
    page = await provider.list_emails(ADDRESS, EmailQuery())
    assert [e.subject for e in page.emails] == ["Unrelated 2", "Re: Quarterly numbers 3 1"]
    unrelated, answer = page.emails
    assert not unrelated.unread and answer.unread
    # The reply threads with our sent message; find_reply finds it.
    found = await provider.find_reply(ADDRESS, "<send-test3@example.test>")
    assert found is not None and found.email_id == answer.email_id
    thread = await provider.list_emails(ADDRESS, EmailQuery(folder=None, thread_id=answer.thread_id, oldest_first=True))
    assert [e.folder for e in thread.emails] == ["sent", "inbox"]
    stored = await provider.fetch_email(ADDRESS, answer.email_id)
    assert stored.raw == reply
    # Read in mailgate -> \Seen on the server.
    await provider.change_email(ADDRESS, answer.email_id, "read", "agent")
    flags = dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "INBOX", "uid", "1")
    assert "\\Seen" in flags
    # Unread again by another mail client -> unread in mailgate after the next sync.
    dovecot.doveadm("flags", "remove", "-u", "alice", "\\Seen", "mailbox", "INBOX", "uid", "1")
    await provider.sync()
    again = await provider.fetch_email(ADDRESS, answer.email_id)
    assert again.summary.unread


async def test_changes_see_only_new_mail_and_survive_a_dropped_connection(
    provider: SmtpImapProvider, dovecot: Dovecot
) -> None:
    for n in range(3):
        imap_append(dovecot, "INBOX", inbound(n))
    start = await provider.changes(ADDRESS, None)
    assert start.emails == ()  # old mail is not new mail to a watcher that starts now
    for n in range(3, 60):
        imap_append(dovecot, "INBOX", inbound(n))
    # The connection dies in the middle of the sync: kick the user while it fetches.
    task = asyncio.create_task(provider.sync())
    await asyncio.sleep(0.01)
    dovecot.doveadm("kick", "alice")
    with contextlib.suppress(Exception):  # either outcome is fine; what counts is the next sync
        await task
    await provider.sync()
    changes = await provider.changes(ADDRESS, start.cursor, limit=500)
    ids = [e.message_id for e in changes.emails]
    assert sorted(ids) == sorted(f"<in-{n}@example.org>" for n in range(3, 60))
    assert len(ids) == len(set(ids))


async def test_uidvalidity_change_resyncs_without_duplicates(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    for n in range(5):
        imap_append(dovecot, "INBOX", inbound(n))
    page = await provider.list_emails(ADDRESS, EmailQuery(limit=100))
    before = {e.message_id: e.email_id for e in page.emails}
    assert len(before) == 5
    dovecot.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "12345", "INBOX")
    imap_append(dovecot, "INBOX", inbound(7))
    await provider.sync()
    page = await provider.list_emails(ADDRESS, EmailQuery(limit=100))
    after = {e.message_id: e.email_id for e in page.emails}
    assert len(page.emails) == 6
    assert {k: after[k] for k in before} == before  # same ids: the old rows were matched, not copied
    state = provider.index.folder_state("INBOX")
    assert state is not None and state[0] == 12345
    # And reading still marks \Seen on the right message under the new UIDs.
    await provider.change_email(ADDRESS, after["<in-3@example.org>"], "read", "agent")
    out = dovecot.doveadm("fetch", "-u", "alice", "flags hdr.message-id", "mailbox", "INBOX", "SEEN")
    assert "<in-3@example.org>" in out and "<in-4@example.org>" not in out


async def test_mail_without_message_id_is_stored_once(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    raw = b"From: x@example.org\r\nTo: alice@example.test\r\nSubject: no id\r\n\r\nhi\r\n"
    imap_append(dovecot, "INBOX", raw)
    await provider.sync()
    dovecot.doveadm("mailbox", "update", "-u", "alice", "--uid-validity", "777", "INBOX")
    await provider.sync()
    page = await provider.list_emails(ADDRESS, EmailQuery())
    assert [e.subject for e in page.emails] == ["no id"]


async def test_idle_notices_new_mail_within_seconds(dovecot: Dovecot, smtp_peer: SmtpPeer, tmp_path: Path) -> None:
    arrived: list[list[str]] = []

    class Hooks:
        async def holds(self, mailbox: str) -> bool:
            return False

        async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
            arrived.append(mailboxes)

    made = make_provider(dovecot, smtp_peer, tmp_path)
    made.hooks = Hooks()
    await made.start()
    try:
        await asyncio.sleep(0.5)  # the IDLE connection is up
        imap_append(dovecot, "INBOX", inbound(1))
        await eventually(lambda: arrived, timeout=10)
        assert arrived[0] == [ADDRESS]
    finally:
        await made.aclose()


async def test_held_mail_for_gated_all(dovecot: Dovecot, smtp_peer: SmtpPeer, tmp_path: Path) -> None:
    class Holding:
        async def holds(self, mailbox: str) -> bool:
            return True

        async def arrived(self, mailboxes: list[str], since: str | None = None) -> None:
            return None

    made = make_provider(dovecot, smtp_peer, tmp_path)
    made.hooks = Holding()
    try:
        imap_append(dovecot, "INBOX", inbound(1))
        assert (await made.list_emails(ADDRESS, EmailQuery())).emails == ()
        held = await made.list_emails(ADDRESS, EmailQuery(held=True))
        assert len(held.emails) == 1
        await made.change_email(ADDRESS, held.emails[0].email_id, "release", "human")
        assert len((await made.list_emails(ADDRESS, EmailQuery())).emails) == 1
    finally:
        await made.aclose()


# --- SMTP faults -------------------------------------------------------------------------------


async def test_4xx_is_temporary_then_one_email(provider: SmtpImapProvider, smtp_peer: SmtpPeer) -> None:
    smtp_peer.sink.fail("RCPT", "421 4.7.0 try again later")
    smtp_peer.sink.fail("DATA", "451 4.3.0 mailbox busy")
    with pytest.raises(TemporaryDeliveryError, match="421"):
        await provider.send(request(4))
    with pytest.raises(TemporaryDeliveryError, match=r"451 4\.3\.0 mailbox busy"):
        await provider.send(request(4))
    await provider.send(request(4))
    assert smtp_peer.sink.ids() == ["<send-test4@example.test>"]


async def test_5xx_is_permanent_with_the_servers_words(provider: SmtpImapProvider, smtp_peer: SmtpPeer) -> None:
    smtp_peer.sink.fail("DATA", "550 5.7.1 Message rejected as spam")
    with pytest.raises(PermanentDeliveryError, match=r"550 5\.7\.1 Message rejected as spam"):
        await provider.send(request(5))
    smtp_peer.sink.fail("RCPT", "550 5.1.1 no such user")
    with pytest.raises(PermanentDeliveryError, match=r"<carol@example.org>.*550 5.1.1 no such user"):
        await provider.send(request(5))
    assert smtp_peer.sink.received == []


async def test_smtp_down_is_temporary(provider: SmtpImapProvider, smtp_peer: SmtpPeer) -> None:
    smtp_peer.stop()
    with pytest.raises(TemporaryDeliveryError, match="cannot reach"):
        await provider.send(request(6))
    smtp_peer.start()
    await provider.send(request(6))
    assert smtp_peer.sink.ids() == ["<send-test6@example.test>"]


async def test_wrong_password_is_permanent(provider: SmtpImapProvider, smtp_peer: SmtpPeer) -> None:
    smtp_peer.sink.users = {"alice": "another"}
    with pytest.raises(PermanentDeliveryError, match="535"):
        await provider.send(request(7))


async def test_connection_lost_after_data_is_not_resent_when_sent_holds_it(
    provider: SmtpImapProvider, smtp_peer: SmtpPeer, dovecot: Dovecot
) -> None:
    # A server that files Sent itself (like Gmail) accepted the message but the answer was lost.
    smtp_peer.sink.file_sent = file_into_sent(dovecot)
    provider.config = provider.config.model_copy(update={"server_files_sent": True})
    smtp_peer.sink.fail("DATA", "drop")
    with pytest.raises(TemporaryDeliveryError, match="lost during DATA"):
        await provider.send(request(8))
    assert provider.index.attempts("<send-test8@example.test>")[0][0] == "ambiguous"
    fresh = make_provider(dovecot, smtp_peer, dovecot.root, server_files_sent=True)  # another worker, empty index
    try:
        await fresh.send(request(8))
    finally:
        await fresh.aclose()
    assert smtp_peer.sink.ids() == ["<send-test8@example.test>"]


async def test_without_the_sent_check_the_ambiguous_window_duplicates(
    provider: SmtpImapProvider, smtp_peer: SmtpPeer, dovecot: Dovecot
) -> None:
    """The honest limit: with no Sent evidence, a lost answer to DATA means a second copy (same Message-ID)."""
    provider.config = provider.config.model_copy(update={"sent_check": False})
    smtp_peer.sink.fail("DATA", "drop")
    with pytest.raises(TemporaryDeliveryError):
        await provider.send(request(9))
    await provider.send(request(9))
    assert smtp_peer.sink.ids() == ["<send-test9@example.test>"] * 2


@pytest.mark.parametrize("security", ["tls", "plain"])
async def test_implicit_tls_and_plain_loopback(dovecot: Dovecot, tmp_path: Path, security: str) -> None:
    peer = SmtpPeer(
        tmp_path / security,
        security=security,
        users={"alice": "secret1"},
        cert=(dovecot.ca_file, dovecot.ca_file.with_name("key.pem")),
    ).start()
    made = make_provider(dovecot, peer, tmp_path, tls=security == "tls")
    try:
        await made.send(request(10))
        assert peer.sink.ids() == ["<send-test10@example.test>"]
    finally:
        await made.aclose()
        peer.stop()
