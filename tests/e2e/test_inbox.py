"""The inbound loop end to end: SMTP in, check, read, reply (approved), wait for the answer by SMTP."""

from __future__ import annotations

import asyncio
import json
import smtplib
from email.message import EmailMessage

import pytest

from tests.support.serve import Serve

pytestmark = pytest.mark.e2e
BOX = "agent@mailgate.local"


def smtp_send(serve: Serve, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", serve.smtp_port, timeout=10) as client:
        client.send_message(message, from_addr="bob@example.com", to_addrs=[BOX])


def message(subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Bob Builder <bob@example.com>"
    msg["To"] = BOX
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def test_smtp_in_check_read_reply_and_wait_for_the_answer(serve: Serve) -> None:
    serve.start()
    first = message("Can we meet?", "Are you free on Tuesday?", Message_ID="<ask-1@example.com>")
    await asyncio.to_thread(smtp_send, serve, first)
    async with serve.mcp() as client:
        listed = await client.call_tool("check_inbox", {"mailbox": BOX})
        assert listed.structured_content is not None, listed.content
        [email] = listed.structured_content["emails"]
        assert email["subject"] == "Can we meet?" and email["unread"] is True

        read = await client.call_tool("read_email", {"mailbox": BOX, "email_id": email["email_id"]})
        assert read.structured_content is not None
        assert read.structured_content["text"] == "Are you free on Tuesday?"

        replied = await client.call_tool(
            "reply_email", {"mailbox": BOX, "email_id": email["email_id"], "body": "Tuesday at 10 works."}
        )
        assert replied.structured_content is not None
        send_id = replied.structured_content["send_id"]
        assert replied.structured_content["status"] == "pending_approval"

    approved = await asyncio.to_thread(serve.cli, "approvals", "approve", send_id, "--as", "alice")
    assert approved.returncode == 0, approved.stderr
    shown = await asyncio.to_thread(serve.cli, "sends", "show", send_id, "--json")
    message_id = json.loads(shown.stdout)["message_id"]

    async def answer_later() -> None:
        await asyncio.sleep(2.0)
        answer = message(
            "Re: Can we meet?",
            "Great, see you then.",
            Message_ID="<answer-1@example.com>",
            In_Reply_To=message_id,
            References=f"<ask-1@example.com> {message_id}",
        )
        await asyncio.to_thread(smtp_send, serve, answer)

    async with serve.mcp() as client:
        answering = asyncio.create_task(answer_later())
        waited = await client.call_tool("wait_for_reply", {"send_id": send_id, "timeout_minutes": 2})
        await answering
        assert waited.structured_content is not None, waited.content
        assert waited.structured_content["status"] == "replied"
        reply = waited.structured_content["reply"]
        assert reply["snippet"] == "Great, see you then."

        thread = await client.call_tool("get_thread", {"mailbox": BOX, "thread_id": email["thread_id"]})
        assert thread.structured_content is not None
        messages = thread.structured_content["messages"]
        assert [(m["folder"], m["depth"]) for m in messages] == [("inbox", 0), ("sent", 1), ("inbox", 2)]

    rows = json.loads((await asyncio.to_thread(serve.cli, "sandbox", "list", "--json")).stdout)
    ours = [r for r in rows if r["message_id"] == message_id]
    assert [r["recipient"] for r in ours] == ["bob@example.com"]
    assert serve.stop() == 0
