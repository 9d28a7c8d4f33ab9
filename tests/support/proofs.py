"""Signing as mailgate's front doors do, for tests that start or signal workflows by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.models import Decision, DeliveryRequest, MailboxPolicy, SendRequest
from workflows.notices import Notice
from workflows.trust.proofs import proof_key, send_notice_fields, sign, sign_decision, sign_request, warrant_for

# The key of workers that tests build without an app (time-skipping tests).
TEST_PROOF_KEY = proof_key(b"tests: the secret key of workflows started by hand")


def signed_request(request: SendRequest, key: bytes = TEST_PROOF_KEY) -> SendRequest:
    return sign_request(key, request, datetime.now(UTC))


def signed_decision(send_id: str, decision: Decision, key: bytes = TEST_PROOF_KEY) -> Decision:
    return sign_decision(key, send_id, decision, datetime.now(UTC))


def warranted(delivery: DeliveryRequest, key: bytes = TEST_PROOF_KEY) -> DeliveryRequest:
    """A delivery of an autonomous send requested through a front door: what the delivery
    activity accepts. Its send id must be the id of the workflow that runs the activity."""
    request = signed_request(
        SendRequest(
            send_id=delivery.send_id,
            mailbox=delivery.mailbox,
            from_name=delivery.from_name,
            requester="agent",
            draft=delivery.draft,
            message_id=delivery.message_id,
            content_hash="tests",
            policy=MailboxPolicy(mode="autonomous"),
            requested_at=delivery.date,
            approval_timeout=timedelta(hours=1),
        ),
        key,
    )
    return delivery.model_copy(update={"warrant": warrant_for(request, None)})


def signed_notice(notice: Notice, key: bytes = TEST_PROOF_KEY) -> Notice:
    """A send's notice with the proof its front door makes at submission (workflows/trust/notice_proofs.py)."""
    assert notice.send_id is not None and notice.draft is not None
    fields = send_notice_fields(notice.mailbox, notice.requester, notice.draft)
    return notice.model_copy(update={"proof": sign(key, "notice", notice.send_id, fields, datetime.now(UTC))})
