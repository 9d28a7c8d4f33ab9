"""The pending cap is counted from visibility, but not for every send while far below it."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import Mailgate
from server.pending_cap import PendingTally


def counting(app: Mailgate, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The visibility counts the front door runs (the real query, recorded)."""
    queries: list[str] = []
    real = app.client.count_workflows

    async def count_workflows(query: str | None = None, **kwargs: Any) -> Any:
        queries.append(query or "")
        return await real(query, **kwargs)

    monkeypatch.setattr(app.client, "count_workflows", count_workflows)
    return queries


async def submit(app: Mailgate, subject: str) -> None:
    await app.sends.submit(mailbox=app.settings.default_mailbox, to=["bob@example.com"], subject=subject, body="b")


async def test_far_below_the_cap_a_burst_counts_once(app: Mailgate, monkeypatch: pytest.MonkeyPatch) -> None:
    app.settings.max_pending_per_mailbox = 200
    queries = counting(app, monkeypatch)
    for i in range(5):
        await submit(app, f"burst {i}")
    assert len(queries) == 1


async def test_near_the_cap_every_send_counts(app: Mailgate, monkeypatch: pytest.MonkeyPatch) -> None:
    app.settings.max_pending_per_mailbox = 3
    queries = counting(app, monkeypatch)
    await submit(app, "one")
    await submit(app, "two")  # 0 counted + 1 started since: not under half the cap, count again
    await submit(app, "three")
    assert len(queries) == 3


def test_the_tally_lets_through_only_under_half_the_cap_and_only_for_a_moment() -> None:
    tally = PendingTally(recount_seconds=60)
    assert not tally.clearly_under("a@x", 10)  # never counted
    tally.counted("a@x", 2)  # 2 waiting + this send
    assert tally.clearly_under("a@x", 10)  # 4 now
    assert tally.clearly_under("a@x", 10)  # 5 now
    assert not tally.clearly_under("a@x", 10)  # half the cap: count
    assert not tally.clearly_under("b@x", 10)  # per mailbox
    stale = PendingTally(recount_seconds=0)
    stale.counted("a@x", 0)
    assert not stale.clearly_under("a@x", 10)
