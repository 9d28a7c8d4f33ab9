"""Waiting for something that happens a little later: one `eventually`, and the waits on the app."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable

from server.app import Mailgate
from workflows.models import DeliveryRequest, SendState, SendStatus


async def eventually(check: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
    """Wait until ``check()`` is truthy; ``check`` may be a plain or an async function."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def provisioned(app: Mailgate, address: str, timeout: float = 15.0) -> None:
    """Wait until the mailbox workflow has made the sandbox mailbox (mail to it is accepted then)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not app.sandbox.is_local(address):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{address} was not provisioned in the sandbox")
        await asyncio.sleep(0.02)


async def visible(app: Mailgate, count: int, timeout: float = 15.0) -> None:
    """Wait until the default mailbox's sends show in visibility (Temporal indexes them shortly after start)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len((await app.sends.search(mailbox=app.settings.default_mailbox, limit=100)).sends) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} sends visible after {timeout} s")
        await asyncio.sleep(0.05)


async def wait_for_status(
    app: Mailgate, send_id: str, statuses: Iterable[SendStatus], timeout: float = 15.0
) -> SendState:
    wanted = set(statuses)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await app.sends.status(send_id)
        if state.status in wanted:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{send_id} stayed {state.status}, expected one of {sorted(wanted)}")
        await asyncio.sleep(0.05)


async def wait_for_notice(outbox: list[DeliveryRequest], recipient: str, timeout: float = 15.0) -> DeliveryRequest:
    """Wait for the system notice (an approval link, a code) the app sends to ``recipient``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for request in outbox:
            if request.system and [a.address for a in request.draft.to] == [recipient]:
                return request
        await asyncio.sleep(0.1)
    raise AssertionError(f"no notice reached {recipient}")
