"""The dashboard's sandbox threads come from the index, not from parsing raw mail (issue 25 item 8).

Before, every send page parsed up to 500 stored raw messages on the event loop: 40 messages
of 2 MB took 5.8 s per view.
"""

from __future__ import annotations

import time
from pathlib import Path

from server.web.dashboard.threads import mailbox_threads, thread_for
from workflows.models import EmailAddress, EmailDraft
from workflows.providers.sandbox.store import SandboxStore

BOX = "agent@mailgate.local"


def message(n: int, size: int) -> bytes:
    parent = (
        f"In-Reply-To: <m{n - 1}@example.org>\r\nReferences: <m0@example.org> <m{n - 1}@example.org>\r\n" if n else ""
    )
    head = (
        f"From: Bob <bob@example.org>\r\nTo: {BOX}\r\nSubject: Re: quarterly report\r\n"
        f"Message-ID: <m{n}@example.org>\r\n{parent}MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    attachment = ("QUJD" * 19 + "\r\n") * (size // 78)
    body = (
        f"--b\r\nContent-Type: text/plain\r\n\r\nPart {n}\r\n--b\r\nContent-Type: application/pdf\r\n"
        f'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="r{n}.pdf"\r\n\r\n'
        f"{attachment}--b--\r\n"
    )
    return (head + body).encode()


def test_send_page_thread_and_sandbox_threads_read_the_index_not_raw_mail(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "sandbox.db")
    store.create_mailbox(BOX)
    for n in range(40):
        store.deliver(message(n, 2_000_000), "bob@example.org", [BOX])
    other = message(0, 100).replace(b"<m0@", b"<other@").replace(b"quarterly", b"unrelated")
    store.deliver(other, "bob@example.org", [BOX])
    draft = EmailDraft(
        to=(EmailAddress(address="bob@example.org"),),
        subject="Re: quarterly report",
        body="Thanks",
        in_reply_to="<m39@example.org>",
        references=("<m0@example.org>", "<m39@example.org>"),
    )

    started = time.perf_counter()
    thread = thread_for(store, BOX, draft, "<reply@mailgate.local>")
    groups = mailbox_threads(store, BOX)
    took = time.perf_counter() - started

    assert [e.message_id for e in thread] == [f"<m{n}@example.org>" for n in range(40)]
    assert thread[0].sender == "Bob <bob@example.org>" and thread[0].to == BOX
    assert sorted(len(g) for g in groups) == [1, 40]
    assert took < 1.0, f"{took:.2f} s for 80 MB of mail"  # parsing the raw mail took 5 s and more
