"""manage_email's actions and search on a real IMAP server (Dovecot): MOVE to Archive, Trash and
a folder, keywords for labels, \\Seen for read flags; the index follows; nothing is expunged."""

from __future__ import annotations

import imaplib

from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import ADDRESS, IMAP_USER, imap_append, inbound
from workflows.providers.smtp_imap.provider import SmtpImapProvider
from workflows.read_models import EmailQuery


def count(dovecot: Dovecot, folder: str) -> int:
    out = dovecot.doveadm("search", "-u", "alice", "mailbox", folder, "all")
    return len([line for line in out.splitlines() if line.strip()])


async def test_actions_reach_the_imap_server(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    await provider.create_mailbox(ADDRESS)
    for n in range(1, 5):
        imap_append(dovecot, "INBOX", inbound(n, subject="Tidy"))
    page = await provider.list_emails(ADDRESS, EmailQuery())
    by_subject = {e.subject: e.email_id for e in page.emails}
    one, two, three, four = (by_subject[f"Tidy {n}"] for n in range(1, 5))

    assert await provider.manage(ADDRESS, one, "label", "work", "agent") == "labelled work"
    flags = dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "INBOX", "uid", "1")
    assert "work" in flags
    assert [e.email_id for e in (await provider.search(ADDRESS, "label:work tidy", 10, None)).emails] == [one]

    await provider.manage(ADDRESS, two, "mark_read", None, "agent")
    assert "\\Seen" in dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "INBOX", "uid", "2")
    await provider.manage(ADDRESS, two, "mark_unread", None, "agent")
    assert "\\Seen" not in dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "INBOX", "uid", "2")

    assert await provider.manage(ADDRESS, three, "archive", None, "agent") == "moved from inbox to archive"
    assert await provider.manage(ADDRESS, four, "trash", None, "agent") == "moved from inbox to trash"
    await provider.manage(ADDRESS, one, "move", "Receipts", "agent")
    assert count(dovecot, "INBOX") == 1
    assert count(dovecot, "Archive") == count(dovecot, "Trash") == count(dovecot, "Receipts") == 1
    # The index agrees, and a later sync does not bring the moved mail back into the inbox.
    await provider.sync()
    inbox = await provider.list_emails(ADDRESS, EmailQuery())
    assert [e.email_id for e in inbox.emails] == [two]
    assert [e.email_id for e in (await provider.search(ADDRESS, "in:trash", 10, None)).emails] == [four]
    assert [e.email_id for e in (await provider.search(ADDRESS, "in:receipts", 10, None)).emails] == [one]
    assert (await provider.fetch_email(ADDRESS, four)).summary.folder == "trash"


async def test_drafts_are_appended_with_the_draft_flag(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    await provider.create_mailbox(ADDRESS)
    raw = (
        f"From: {ADDRESS}\r\nTo: bob@example.com\r\nSubject: Plan\r\nMessage-ID: <draft-1@example.test>\r\n\r\nv1\r\n"
    ).encode()
    draft_id = await provider.save_draft(ADDRESS, raw)
    assert count(dovecot, "Drafts") == 1
    assert "\\Draft" in dovecot.doveadm("fetch", "-u", "alice", "flags", "mailbox", "Drafts", "all")
    newer = raw.replace(b"v1", b"v2").replace(b"draft-1@", b"draft-2@")
    assert await provider.save_draft(ADDRESS, newer, draft_id) == draft_id
    assert count(dovecot, "Drafts") == 1
    assert "v2" in dovecot.doveadm("fetch", "-u", "alice", "text", "mailbox", "Drafts", "all")
    assert [d.subject for d in await provider.drafts(ADDRESS)] == ["Plan"]
    assert b"v2" in (await provider.draft(ADDRESS, draft_id)).raw
    # Drafts are not inbox mail, and a sync does not make them so.
    await provider.sync()
    assert not (await provider.list_emails(ADDRESS, EmailQuery())).emails
    await provider.delete_draft(ADDRESS, draft_id)
    assert count(dovecot, "Drafts") == 0 and count(dovecot, "Trash") == 1  # moved, never expunged
    assert await provider.drafts(ADDRESS) == []


def other_client_moves(server: Dovecot, message_id: str, source: str, dest: str) -> None:
    """Another mail client (a phone, webmail) moves one message: UID MOVE on its own connection."""
    client = imaplib.IMAP4("127.0.0.1", server.port)
    try:
        client.login(IMAP_USER, server.users[IMAP_USER])
        client.create(dest)  # "already exists" is fine
        client.select(source)
        typ, data = client.uid("SEARCH", "HEADER", "Message-ID", message_id)
        [uid] = data[0].split()
        typ, data = client.uid("MOVE", uid.decode(), dest)
        assert typ == "OK", data
    finally:
        client.logout()


def flags_in(server: Dovecot, folder: str) -> str:
    return server.doveadm("fetch", "-u", IMAP_USER, "flags", "mailbox", folder, "all")


async def test_mail_moved_by_another_client_keeps_its_email_id(provider: SmtpImapProvider, dovecot: Dovecot) -> None:
    await provider.create_mailbox(ADDRESS)
    for n in range(1, 4):
        imap_append(dovecot, "INBOX", inbound(n, subject="Moved"))
    page = await provider.list_emails(ADDRESS, EmailQuery())
    one, two, three = ({e.subject: e.email_id for e in page.emails}[f"Moved {n}"] for n in range(1, 4))

    # Another client files one into a folder of its own and archives another.
    other_client_moves(dovecot, "<in-1@example.org>", "INBOX", "Receipts")
    other_client_moves(dovecot, "<in-2@example.org>", "INBOX", "Archive")
    await provider.sync()
    assert [e.email_id for e in (await provider.list_emails(ADDRESS, EmailQuery())).emails] == [three]
    assert [e.email_id for e in (await provider.search(ADDRESS, "in:receipts", 10, None)).emails] == [one]
    assert [e.email_id for e in (await provider.search(ADDRESS, "in:archive", 10, None)).emails] == [two]

    # Actions on it by its old id reach the message where it is now.
    assert await provider.manage(ADDRESS, one, "label", "paid", "agent") == "labelled paid"
    assert "paid" in flags_in(dovecot, "Receipts")
    assert await provider.manage(ADDRESS, one, "trash", None, "agent") == "moved from Receipts to trash"
    assert count(dovecot, "Receipts") == 0 and count(dovecot, "Trash") == 1
    # Our own move keeps tracking it too; then another client moves it on, unseen by any sync.
    other_client_moves(dovecot, "<in-1@example.org>", "Trash", "Kept")
    await provider.manage(ADDRESS, one, "mark_read", None, "agent")
    assert "\\Seen" in flags_in(dovecot, "Kept")
    assert (await provider.fetch_email(ADDRESS, one)).summary.folder == "Kept"

    # Moved back into the inbox by another client: the same email, not a second copy.
    other_client_moves(dovecot, "<in-2@example.org>", "Archive", "INBOX")
    await provider.sync()
    assert {e.email_id for e in (await provider.list_emails(ADDRESS, EmailQuery())).emails} == {two, three}
    assert not (await provider.search(ADDRESS, "in:archive", 10, None)).emails
    await provider.manage(ADDRESS, two, "archive", None, "agent")
    assert count(dovecot, "Archive") == 1 and count(dovecot, "INBOX") == 1
