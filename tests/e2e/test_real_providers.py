"""`mailgate serve` with a TOML config: an IMAP/SMTP mailbox (Dovecot, aiosmtpd) and a MultiMail
mailbox (the contract server), chosen only by configuration, driven by an agent over MCP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support.peers.dovecot import Dovecot
from tests.support.peers.fixtures import IMAP_PASSWORD, IMAP_USER, dovecot, imap_append, smtp_peer
from tests.support.peers.multimail_fake import FakeServer
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
__all__ = ["dovecot", "smtp_peer"]  # fixtures
IMAP_BOX = "alice@example.test"
MM_BOX = "bot@mm.example"


def config(path: Path, dovecot: Dovecot, smtp: SmtpPeer, multimail: FakeServer, box_id: str) -> Path:
    path.write_text(
        f"""
[[mailboxes]]
address = "{IMAP_BOX}"
provider = "smtp_imap"
smtp_url = "smtp+starttls://{IMAP_USER}@127.0.0.1:{smtp.port}"
imap_url = "imaps://{IMAP_USER}@127.0.0.1:{dovecot.tls_port}"
password_env = "ALICE_PASSWORD"
tls_ca_file = "{dovecot.ca_file}"
oversight_mode = "gated_send"

[[mailboxes]]
address = "{MM_BOX}"
provider = "multimail"
api_key_env = "MM_KEY"
multimail_mailbox_id = "{box_id}"
base_url = "{multimail.url}"
oversight_mode = "autonomous"
"""
    )
    return path


async def test_serve_with_real_providers_from_toml(
    serve: Serve, dovecot: Dovecot, smtp_peer: SmtpPeer, tmp_path: Path
) -> None:
    multimail = FakeServer().start()
    try:
        box_id = multimail.fake.add_mailbox(MM_BOX, "autonomous")
        serve.extra_env.update(
            MAILGATE_CONFIG=str(config(tmp_path / "mailgate.toml", dovecot, smtp_peer, multimail, box_id)),
            MAILGATE_INBOUND_POLL_SECONDS="2",
            ALICE_PASSWORD=IMAP_PASSWORD,
            MM_KEY="mm_live_sender",
        )
        await asyncio.to_thread(serve.start)
        async with serve.mcp() as client:
            sent = await client.call_tool(
                "durable_send",
                {"mailbox": IMAP_BOX, "to": ["carol@example.org"], "subject": "Lunch?", "body": "Thursday?"},
            )
            assert sent.structured_content is not None, sent.content
            send_id = sent.structured_content["send_id"]
            assert sent.structured_content["status"] == "pending_approval"
            approved = await asyncio.to_thread(serve.cli, "approvals", "approve", send_id, "--as", "human")
            assert approved.returncode == 0, approved.stderr
            await eventually(lambda: len(smtp_peer.sink.received) == 1)
            message_id = smtp_peer.sink.received[0].message_id

            async def answer_later() -> None:
                await asyncio.sleep(2.0)
                raw = (
                    f"From: Carol <carol@example.org>\r\nTo: {IMAP_BOX}\r\nSubject: Re: Lunch?\r\n"
                    f"Message-ID: <carol-9@example.org>\r\nIn-Reply-To: {message_id}\r\n\r\nYes!\r\n"
                ).encode()
                await asyncio.to_thread(imap_append, dovecot, "INBOX", raw)

            answering = asyncio.create_task(answer_later())
            waited = await client.call_tool("wait_for_reply", {"send_id": send_id, "timeout_minutes": 2})
            await answering
            assert waited.structured_content is not None, waited.content
            assert waited.structured_content["status"] == "replied"
            listed = await client.call_tool("check_inbox", {"mailbox": IMAP_BOX})
            assert listed.structured_content is not None
            [email] = listed.structured_content["emails"]
            thread = await client.call_tool("get_thread", {"mailbox": IMAP_BOX, "thread_id": email["thread_id"]})
            assert thread.structured_content is not None
            assert [m["folder"] for m in thread.structured_content["messages"]] == ["sent", "inbox"]

            # The MultiMail mailbox: autonomous in mailgate and at MultiMail, so it goes out at once.
            mm = await client.call_tool(
                "durable_send", {"mailbox": MM_BOX, "to": ["dan@example.org"], "subject": "Hi", "body": "**hi**"}
            )
            assert mm.structured_content is not None, mm.content
            mm_id = mm.structured_content["send_id"]
            shown: dict[str, object] = {}

            async def sent_state() -> bool:
                admin = {"Authorization": f"Bearer {serve.token('admin')}"}
                async with httpx.AsyncClient(base_url=serve.url, headers=admin, timeout=30) as http:
                    result = await http.get(f"/api/sends/{mm_id}")  # what `mailgate sends show --json` prints
                shown.update(result.json() if result.status_code == 200 else {})
                return shown.get("status") == "sent"

            await eventually(sent_state, timeout=30)
            [out] = [e for e in multimail.fake.emails.values() if e["direction"] == "outbound"]
            assert out["to"] == ["dan@example.org"] and out["delivered_at"]

            # Tidying the MultiMail mailbox: labels are MultiMail tags, mark_read reads the email,
            # what MultiMail's API cannot do is refused per id, and it keeps no drafts.
            inbound = multimail.fake.add_email(
                box_id, "inbound", from_="dan@example.org", to=[MM_BOX], subject="Re: Hi"
            )
            listed = await client.call_tool("check_inbox", {"mailbox": MM_BOX})
            assert listed.structured_content is not None
            assert [e["email_id"] for e in listed.structured_content["emails"]] == [inbound["id"]]

            async def manage(action: str, **extra: str) -> list[tuple[bool, str]]:
                args = {"mailbox": MM_BOX, "email_ids": [inbound["id"]], "action": action, **extra}
                answer = await client.call_tool("manage_email", args)
                assert answer.structured_content is not None, answer.content
                return [(r["ok"], r["result"]) for r in answer.structured_content["results"]]

            assert await manage("label", label="follow-up") == [(True, "labelled follow-up")]
            assert inbound["tags"] == {"follow-up": "true"} and inbound["status"] == "unread"
            assert await manage("mark_read") == [(True, "marked read")] and inbound["status"] == "read"
            [(ok, why)] = await manage("archive")
            assert not ok and "action='label'" in why
            draft = await client.call_tool("create_draft", {"mailbox": MM_BOX, "subject": "Plan", "body": "v1"})
            assert draft.is_error and "durable_send" in str(draft.content)

            # Oversight: gated_all hides mail that arrives now from every action; read_only refuses all.
            assert serve.cli("mailbox", "set-mode", MM_BOX, "gated_all").returncode == 0
            held = multimail.fake.add_email(box_id, "inbound", from_="eve@example.org", to=[MM_BOX], subject="Psst")
            answer = await client.call_tool(
                "manage_email",
                {"mailbox": MM_BOX, "email_ids": [held["id"], inbound["id"]], "action": "label", "label": "x"},
            )
            assert answer.structured_content is not None, answer.content
            assert [r["ok"] for r in answer.structured_content["results"]] == [False, True]
            assert held["tags"] == {} and held["status"] == "unread"
            assert serve.cli("mailbox", "set-mode", MM_BOX, "read_only").returncode == 0
            refused = await client.call_tool(
                "manage_email", {"mailbox": MM_BOX, "email_ids": [inbound["id"]], "action": "unlabel", "label": "x"}
            )
            assert refused.is_error and "read_only" in str(refused.content)
            assert inbound["tags"] == {"follow-up": "true", "x": "true"}
        assert serve.stop() == 0
        log = serve.log()
        assert IMAP_PASSWORD not in log and "mm_live_sender" not in log
    finally:
        multimail.stop()
