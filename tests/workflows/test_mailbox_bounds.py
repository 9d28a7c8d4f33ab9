"""MailboxWorkflow's carried state stays bounded, and admission answers each send the same way.

Issue 24 items 1 and 8, on the time-skipping server: a mailbox driven past every bound keeps
working, carries less than Temporal's 2 MB across continue-as-new, and a send it let out is
let out again (not judged again) for as long as its delivery may retry.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.support.histories import replays
from tests.support.mailbox import start_mailbox
from tests.support.proofs import TEST_PROOF_KEY
from workflows.mailbox import (
    ACKED_KEPT,
    ACTOR_CHARS,
    ADMISSIONS_KEPT_FOR,
    ADMISSIONS_MAX,
    AUDIT_KEPT,
    DETAIL_CHARS,
    HISTORY_LIMIT,
    REASON_CHARS,
    REVIEWS_KEPT,
    STATE_BUDGET,
    UPGRADE_TTL,
    UPGRADES_PENDING,
    UPGRADES_SETTLED_KEPT,
    MailboxWorkflow,
)
from workflows.mailbox_models import Admitted, MailboxState, ReviewAck, ReviewItem, UpgradeAsk, UpgradeRequest
from workflows.models import AdmitBatch, AdmitRequest, AuditEvent, EmailAddress, MailboxConfig
from workflows.providers.base import ProviderSet
from workflows.providers.fake import FakeProvider
from workflows.sending.options import DELIVERY_DEADLINE
from workflows.temporal import data_converter
from workflows.worker import build_worker

TWO_MB = 2 * 1024 * 1024
TO = (EmailAddress(address="b@example.com"),)


def encoded_size(value: Any) -> int:
    return data_converter().payload_converter.to_payloads([value])[0].ByteSize()


async def admit(handle: WorkflowHandle[Any, Any], send_id: str) -> str:
    answer = await handle.execute_update(
        MailboxWorkflow.admit, AdmitRequest(send_id=send_id, recipients=TO, approved_by=None)
    )
    return f"{answer.outcome} {answer.reason}".strip()


async def admit_many(handle: WorkflowHandle[Any, Any], ids: list[str]) -> list[str]:
    batch = AdmitBatch(requests=tuple(AdmitRequest(send_id=i, recipients=TO, approved_by=None) for i in ids))
    answers = await handle.execute_update(MailboxWorkflow.admit_many, batch)
    return [a.outcome for a in answers]


async def ask_upgrade(handle: WorkflowHandle[Any, Any], request_id: str, reason: str = "please") -> UpgradeRequest:
    ask = UpgradeAsk(request_id=request_id, mode="autonomous", reason=reason, requested_by="agent")
    result: UpgradeRequest = await handle.execute_update(MailboxWorkflow.request_upgrade, ask)
    return result


async def continue_as_new(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> tuple[str, int]:
    """Push the mailbox past its history limit with cheap, idempotent updates; the new run's
    id and the size of the input it was started with."""
    first = (await handle.describe()).run_id
    latest = env.client.get_workflow_handle(handle.id)
    for _ in range(HISTORY_LIMIT // 2):
        await asyncio.gather(*(admit(latest, "warm-up") for _ in range(8)))
        description = await latest.describe()
        if description.run_id != first:
            break
    else:
        raise AssertionError("the mailbox did not continue as new")
    started = await anext(aiter(env.client.get_workflow_handle(handle.id).fetch_history_events()))
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    size = sum(p.ByteSize() for p in started.workflow_execution_started_event_attributes.input.payloads)
    return description.run_id, size


@pytest.fixture
async def queue(skipping_env: WorkflowEnvironment) -> Any:
    name = f"tq-{uuid.uuid4().hex}"
    async with build_worker(skipping_env.client, name, ProviderSet(FakeProvider()), proof_key=TEST_PROOF_KEY):
        yield name


async def test_request_upgrade_is_capped_with_a_clear_error_until_one_expires(
    skipping_env: WorkflowEnvironment, queue: str
) -> None:
    address, handle = await start_mailbox(skipping_env, queue)
    for i in range(UPGRADES_PENDING):
        await ask_upgrade(handle, f"r{i}")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await ask_upgrade(handle, "one-too-many")
    message = str(refused.value.cause)
    assert f"already has {UPGRADES_PENDING} pending upgrade requests" in message
    assert address in message
    state = await handle.query(MailboxWorkflow.describe)
    assert len(state.upgrades) == UPGRADES_PENDING
    # Expiry opens the way again: by time, without anyone presenting a code.
    await skipping_env.sleep(UPGRADE_TTL + timedelta(minutes=1))
    await ask_upgrade(handle, "after-expiry")
    state = await handle.query(MailboxWorkflow.describe)
    assert sorted(u.status for u in state.upgrades) == ["expired"] * UPGRADES_PENDING + ["pending"]


async def test_expired_upgrades_are_settled_and_pruned_at_continue_as_new(
    skipping_env: WorkflowEnvironment, queue: str
) -> None:
    _, handle = await start_mailbox(skipping_env, queue)
    for i in range(3):
        await ask_upgrade(handle, f"old-{i}")
    await skipping_env.sleep(UPGRADE_TTL + timedelta(hours=1))
    _, _ = await continue_as_new(skipping_env, handle)
    latest = skipping_env.client.get_workflow_handle(handle.id)
    state = await latest.query(MailboxWorkflow.describe)
    # Carried over as what they are now, not as "pending" forever.
    assert sorted(u.status for u in state.upgrades) == ["expired"] * 3
    await skipping_env.sleep(timedelta(days=8))
    await continue_as_new(skipping_env, latest)
    state = await skipping_env.client.get_workflow_handle(handle.id).query(MailboxWorkflow.describe)
    assert state.upgrades == ()


async def test_a_send_let_out_gets_the_same_answer_after_its_rate_window_and_continue_as_new(
    skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """A delivery retried hours later is not judged again: the rate limit has filled up since,
    and judging it again would end it `blocked` after its first attempt may have delivered."""
    _, handle = await start_mailbox(skipping_env, queue, mode="monitored", rate_per_hour=1)
    assert await admit(handle, "s1") == "ok"
    await skipping_env.sleep(timedelta(hours=2))
    assert await admit(handle, "s2") == "ok"
    assert await admit(handle, "s1") == "ok"
    assert (await admit(handle, "s3")).startswith("blocked rate limit reached")
    await continue_as_new(skipping_env, handle)
    latest = skipping_env.client.get_workflow_handle(handle.id)
    assert await admit(latest, "s1") == "ok"
    assert await admit(latest, "s2") == "ok"
    # Counted once each: s1 and s2 are one review each, whatever the retries.
    state = await latest.query(MailboxWorkflow.describe)
    assert sorted(r.send_id for r in state.reviews) == ["s1", "s2"]
    # Remembered for longer than a delivery can retry, then forgotten (bounded by age).
    assert ADMISSIONS_KEPT_FOR > DELIVERY_DEADLINE
    await skipping_env.sleep(ADMISSIONS_KEPT_FOR + timedelta(hours=1))
    assert await admit(latest, "s4") == "ok"
    state = await latest.query(MailboxWorkflow.describe)
    assert [a.send_id for a in state.admissions] == ["s4"]


async def test_the_mailbox_driven_past_every_bound_carries_under_2_mb(
    skipping_env: WorkflowEnvironment, queue: str
) -> None:
    """The 2 MB guard: more admissions and reviews than kept, settled and pending upgrades
    with the longest reasons, a full audit; then continue-as-new past the history limit."""
    _, handle = await start_mailbox(skipping_env, queue, mode="monitored")
    batches = (ADMISSIONS_MAX + 1000) // 1000
    for b in range(batches):
        ids = [f"send-{b:02d}-{i:04d}-{'x' * 10}" for i in range(1000)]
        assert set(await admit_many(handle, ids)) == {"ok"}
    acked = [f"send-{batches - 1:02d}-{i:04d}-{'x' * 10}" for i in range(20)]
    for send_id in acked:
        await handle.execute_update(MailboxWorkflow.ack_review, ReviewAck(send_id=send_id, actor="a" * ACTOR_CHARS))
    for i in range(UPGRADES_PENDING):
        await ask_upgrade(handle, f"u{i}", "r" * REASON_CHARS)
    state = await handle.query(MailboxWorkflow.describe)
    assert len(state.admissions) == ADMISSIONS_MAX
    # While a run lasts the review list may hold up to both caps; what is carried keeps each.
    assert len(state.reviews) <= REVIEWS_KEPT + ACKED_KEPT
    assert len(state.audit) == AUDIT_KEPT
    assert all(len(e.detail) <= DETAIL_CHARS for e in state.audit)

    first_run = (await handle.describe()).run_id
    run_id, size = await continue_as_new(skipping_env, handle)
    assert size < STATE_BUDGET < TWO_MB
    # The 2,000-event guard: the first run ended by continuing as new near its limit, not past it.
    events = [
        e async for e in skipping_env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history_events()
    ]
    assert HISTORY_LIMIT <= len(events) < HISTORY_LIMIT + 100
    assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    await replays(skipping_env.client, handle.id, first_run)
    latest = skipping_env.client.get_workflow_handle(handle.id, run_id=run_id)
    carried = await latest.query(MailboxWorkflow.describe)
    assert len(carried.admissions) == ADMISSIONS_MAX
    # The newest are kept: a send admitted last still gets its answer.
    last = f"send-{batches - 1:02d}-0999-{'x' * 10}"
    assert last in {a.send_id for a in carried.admissions}
    assert len([r for r in carried.reviews if r.acked_by is None]) == REVIEWS_KEPT
    assert len([r for r in carried.reviews if r.acked_by is not None]) == 20
    assert {u.request_id for u in carried.upgrades} == {f"u{i}" for i in range(UPGRADES_PENDING)}
    # ... and it still works: admissions, reviews, a mode change.
    assert await admit(latest, "after") == "ok"
    await latest.execute_update(MailboxWorkflow.ack_review, ReviewAck(send_id=last, actor="reviewer"))


def test_the_worst_case_state_fits_the_budget_without_trimming() -> None:
    """Every collection at its cap, with the longest values the handlers accept, fits STATE_BUDGET
    (which _fit() enforces anyway): the bounds written beside the state are the real ones."""
    now = datetime.now(UTC)
    long_send = "send-" + "x" * 20
    actor = "a" * ACTOR_CHARS
    config = MailboxConfig(address="x" * 40 + "@example.com", approvers=("p@example.com",) * 5)
    state = MailboxState(
        config=config,
        created_by=actor,
        created_at=now,
        provisioned=True,
        admissions=tuple(Admitted(send_id=f"{long_send}{i}", at=now, mode="monitored") for i in range(ADMISSIONS_MAX)),
        reviews=tuple(ReviewItem(send_id=f"{long_send}{i}", at=now) for i in range(REVIEWS_KEPT))
        + tuple(
            ReviewItem(send_id=f"{long_send}a{i}", at=now, acked_by=actor, acked_at=now) for i in range(ACKED_KEPT)
        ),
        upgrades=tuple(
            UpgradeRequest(
                request_id=f"{i:012d}",
                mode="autonomous",
                reason="r" * REASON_CHARS,
                requested_by=actor,
                requested_at=now,
                expires_at=now,
            )
            for i in range(UPGRADES_PENDING + UPGRADES_SETTLED_KEPT)
        ),
        audit=tuple(
            AuditEvent(at=now, kind="upgrade_requested", actor=actor, detail="d" * DETAIL_CHARS, mailbox=config.address)
            for _ in range(AUDIT_KEPT)
        ),
    )
    assert encoded_size(state) < STATE_BUDGET < TWO_MB
