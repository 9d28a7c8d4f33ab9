"""Slack approvals end to end: `mailgate serve` with a Slack app pointed at the contract server.

One stack, four sends in a gated mailbox with a ``slack_channel``: approved from Slack, rejected
with a reason through the modal, decided elsewhere (the CLI) and cancelled by the agent — each
Slack message updated in place. Refusals on the way: a non-approver, an unverified email, a
forged, a stale and a replayed request; Edit only hands over to the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers.slack_fake import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    SlackServer,
    block_action,
    reject_submission,
    signed,
)
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
BOX = "team@mailgate.local"
ALICE, MALLORY, GHOST = "UALICE", "UMALLORY", "UGHOST"


def config(path: Path) -> Path:
    path.write_text(
        f"""
[[mailboxes]]
address = "{BOX}"
oversight_mode = "gated_send"
approvers = ["alice@example.com", "bob@example.com"]
slack_channel = "{CHANNEL}"
"""
    )
    return path


def buttons(message: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


async def test_slack_approvals_through_serve(serve: Serve, tmp_path: Path) -> None:
    slack = SlackServer().start()
    fake = slack.fake
    fake.add_user(ALICE, "alice@example.com")
    fake.add_user(MALLORY, "mallory@example.com")
    fake.add_user(GHOST, "bob@example.com", confirmed=False)  # an approver's address, never verified
    fake.fail_next.append("ratelimited")  # Slack's first answer is a refusal: retried, the send unharmed
    serve.extra_env.update(
        MAILGATE_CONFIG=str(config(tmp_path / "mailgate.toml")),
        MAILGATE_SLACK_BOT_TOKEN=BOT_TOKEN,
        MAILGATE_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        MAILGATE_SLACK_API_URL=slack.api_url,
    )
    try:
        await asyncio.to_thread(serve.start)
        async with serve.mcp() as client, httpx.AsyncClient(base_url=serve.url, timeout=30) as http:

            async def post(payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
                body, headers = signed(payload, **kwargs)
                return await http.post("/webhooks/slack", content=body, headers=headers)

            async def status(send_id: str) -> dict[str, Any]:
                # What `mailgate sends show --json` prints, from the API (no Python start per look).
                admin = {"Authorization": f"Bearer {serve.token('admin')}"}
                shown = await http.get(f"/api/sends/{send_id}", headers=admin)
                assert shown.status_code == 200, shown.text
                return dict(shown.json())

            sends: list[str] = []
            for n, subject in enumerate(["Approve me", "Reject me", "Decide elsewhere", "Cancel me"]):
                sent = await client.call_tool(
                    "durable_send",
                    {
                        "mailbox": BOX,
                        "to": ["carol@example.org"],
                        "bcc": ["audit@example.org"],
                        "subject": subject,
                        "body": f"Body {n}",
                        "idempotency_key": f"slack-{n}",
                    },
                )
                assert sent.structured_content is not None, sent.content
                assert sent.structured_content["status"] == "pending_approval"
                sends.append(sent.structured_content["send_id"])
            approve_me, reject_me, elsewhere, cancel_me = sends

            await eventually(lambda: len(fake.messages) == 4, timeout=60)
            posts = fake.called("chat.postMessage")
            assert len(posts) == 5 and len(fake.called("users.info")) == 0  # one refused, then retried
            ts = {buttons_value(m): t for (_, t), m in fake.messages.items()}
            first = fake.message(ts[approve_me])
            assert buttons(first) == ["mailgate_approve", "mailgate_reject", "mailgate_edit"]
            assert "audit@example.org" in text_of(first) and "Requested by" in text_of(first)  # Bcc shown

            # Forged, stale: refused before anything is read.
            forged = await post(block_action(ALICE, "mailgate_approve", approve_me, ts[approve_me]), secret="wrong")
            assert forged.status_code == 401
            stale = await post(
                block_action(ALICE, "mailgate_approve", approve_me, ts[approve_me]), at=time.time() - 600
            )
            assert stale.status_code == 401
            # A non-approver and an unverified email: told privately, nothing changes.
            for user in (MALLORY, GHOST):
                refused = await post(block_action(user, "mailgate_approve", approve_me, ts[approve_me]))
                assert refused.status_code == 200
            ephemeral = fake.called("chat.postEphemeral")
            assert [e["user"] for e in ephemeral] == [MALLORY, GHOST]
            assert "not an approver" in ephemeral[0]["text"]
            assert (await status(approve_me))["status"] == "pending_approval"
            # Edit is a link to the dashboard: the click itself changes nothing.
            edit = first["blocks"][-1]["elements"][2]
            assert edit["url"] == f"{serve.url}/sends/{approve_me}"
            assert (await post(block_action(ALICE, "mailgate_edit", approve_me, ts[approve_me]))).status_code == 200

            # Approved from Slack; the same signed request again is taken once.
            body, headers = signed(block_action(ALICE, "mailgate_approve", approve_me, ts[approve_me]))
            for _ in range(2):
                assert (await http.post("/webhooks/slack", content=body, headers=headers)).status_code == 200
            await eventually(lambda: "Approved" in text_of(fake.message(ts[approve_me])))
            state = await status(approve_me)
            assert state["decision"]["approver"] == "alice@example.com"
            assert state["decision"]["channel"] == "slack"
            assert [e["kind"] for e in state["events"]].count("approved") == 1
            assert buttons(fake.message(ts[approve_me])) == []

            # Rejected with a reason, through the modal.
            assert (await post(block_action(ALICE, "mailgate_reject", reject_me, ts[reject_me]))).status_code == 200
            [opened] = fake.called("views.open")
            view = {"id": "V0REJECT1", **opened["view"]}
            assert view["private_metadata"] == reject_me
            assert view["title"]["text"] == "Reject email"
            assert view["blocks"][0]["text"]["text"] == "Subject: Reject me"
            empty = await post(reject_submission(ALICE, view, "  "))
            assert empty.json()["response_action"] == "errors"
            wrong_user = await post(reject_submission(MALLORY, view, "no"))
            assert wrong_user.json()["response_action"] == "errors"
            assert (await status(reject_me))["status"] == "pending_approval"
            done = await post(reject_submission(ALICE, view, "Not to Carol, please"))
            assert done.status_code == 200 and done.content == b""
            await eventually(lambda: "Not to Carol, please" in text_of(fake.message(ts[reject_me])))
            state = await status(reject_me)
            assert state["status"] == "rejected" and state["reason"] == "Not to Carol, please"
            assert "Rejected" in text_of(fake.message(ts[reject_me]))

            # Decided elsewhere (the CLI) and cancelled by the agent: the messages follow.
            approved = await asyncio.to_thread(serve.cli, "approvals", "approve", elsewhere, "--as", "bob@example.com")
            assert approved.returncode == 0, approved.stderr
            await eventually(lambda: "bob@example.com" in text_of(fake.message(ts[elsewhere])))
            assert buttons(fake.message(ts[elsewhere])) == []
            cancelled = await client.call_tool("cancel_send", {"send_id": cancel_me})
            assert not cancelled.is_error, cancelled.content
            await eventually(lambda: "Cancelled" in text_of(fake.message(ts[cancel_me])))
            # A click on a message already decided: told why, nothing changes.
            late = await post(block_action(ALICE, "mailgate_approve", elsewhere, ts[elsewhere]))
            assert late.status_code == 200
            assert "Not approved" in fake.called("chat.postEphemeral")[-1]["text"]
            assert (await status(elsewhere))["decision"]["approver"] == "bob@example.com"
    finally:
        slack.stop()


def buttons_value(message: dict[str, Any]) -> str:
    value: str = next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
    return value
