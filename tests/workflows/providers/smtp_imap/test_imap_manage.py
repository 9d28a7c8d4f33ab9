"""manage_email's actions and search on a real IMAP server (Dovecot): MOVE to Archive, Trash and
a folder, keywords for labels, \\Seen for read flags; the index follows; nothing is expunged."""

from __future__ import annotations

from tests.peers.dovecot import Dovecot
from tests.peers.fixtures import ADDRESS, imap_append
from tests.workflows.providers.smtp_imap.test_smtp_imap import inbound
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
