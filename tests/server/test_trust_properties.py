"""Property: no sequence of agent tool calls loosens a mailbox or gets a gated email out."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from server.app import Mailgate
from server.mcp_server import build_mcp
from tests.support.loop_thread import LoopThread, Stack
from workflows.models import MODES, strictness

T = TypeVar("T")


modes = st.sampled_from(MODES)
calls = st.one_of(
    st.tuples(st.just("set_oversight_mode"), modes),
    st.tuples(st.just("request_upgrade"), modes),
    st.tuples(st.just("apply_upgrade"), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=1, max_size=10)),
    st.tuples(st.just("apply_upgrade_from_other_mailbox"), st.none()),
    st.tuples(st.just("create_mailbox"), modes),
    st.tuples(st.just("durable_send"), st.sampled_from(["b@example.com", "boss@example.org", "x@evil.com"])),
    st.tuples(st.just("cancel_send"), st.none()),
)


async def play(app: Mailgate, sequence: list[tuple[str, Any]]) -> dict[str, str]:
    """Run the agent's calls; return each mailbox it could touch with its starting mode."""
    own = f"p-{uuid.uuid4().hex[:10]}@mailgate.local"
    other = f"o-{uuid.uuid4().hex[:10]}@mailgate.local"
    await app.mailboxes.create(own, created_by="tests")
    await app.mailboxes.create(other, created_by="tests")
    # A code legitimately given for another mailbox must not work here.
    other_code = (await app.mailboxes.request_upgrade(other, "autonomous", "x", requested_by="agent")).code
    start = {own: "gated_send"}
    sends: list[str] = []
    async with Client(build_mcp(app)) as client:
        for name, value in sequence:
            if name == "set_oversight_mode":
                await client.call_tool(name, {"mailbox": own, "mode": value})
            elif name == "request_upgrade":
                await client.call_tool(name, {"mailbox": own, "mode": value, "reason": "please"})
            elif name == "apply_upgrade":
                await client.call_tool(name, {"mailbox": own, "code": value})
            elif name == "apply_upgrade_from_other_mailbox":
                await client.call_tool("apply_upgrade", {"mailbox": own, "code": other_code})
            elif name == "create_mailbox":
                address = f"c-{uuid.uuid4().hex[:10]}@mailgate.local"
                created = await client.call_tool(name, {"address": address, "oversight_mode": value})
                if not created.is_error:
                    start[address] = str((created.structured_content or {})["mode"])
            elif name == "durable_send":
                for mailbox in start:
                    sent = await client.call_tool(
                        name, {"mailbox": mailbox, "to": [value], "subject": "s", "body": str(len(sends))}
                    )
                    if not sent.is_error:
                        sends.append(str((sent.structured_content or {})["send_id"]))
            elif name == "cancel_send" and sends:
                await client.call_tool(name, {"send_id": sends[0]})
    for send_id in sends:
        assert (await app.sends.status(send_id)).status in ("pending_approval", "cancelled", "blocked")
    return start


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(calls, min_size=1, max_size=8))
def test_agent_calls_never_loosen_a_mailbox_nor_send_without_approval(
    threaded: tuple[LoopThread, Stack], sequence: list[tuple[str, Any]]
) -> None:
    runner, s = threaded
    start = runner.run(play(s.app, sequence))
    for mailbox, mode in start.items():
        now = runner.run(s.app.mailboxes.state(mailbox)).config.mode
        assert strictness(now) <= strictness(mode), (mailbox, mode, now)  # type: ignore[arg-type]
        assert s.app.sandbox.deliveries(mailbox) == []
    assert strictness(s.app.settings.new_mailbox_mode) <= strictness("gated_send")
