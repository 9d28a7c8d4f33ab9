"""Telling humans about a send: a notice for each approval round (and each monitored send), and
a Slack message per approval round when the mailbox has a channel. Each is an abandoned child
workflow, so it outlives the send and retries on its own."""

from __future__ import annotations

from temporalio import workflow

# workflows.notify and workflows.slack too: a send only starts or signals their workflows (through
# start_notice, post_message, settle_message), so they come from the host instead of being
# re-imported (their classes re-defined) in every send's sandbox.
with workflow.unsafe.imports_passed_through():
    from workflows.notices import Notice, NoticeKind, light_draft
    from workflows.notify import start_notice
    from workflows.patches import NOTIFY_PATCH, SLACK_PATCH
    from workflows.slack import post_message, settle_message
    from workflows.slack_client.message import SlackOutcome, SlackRequest, SlackStatus
    from workflows.trust.proofs import draft_digests

from workflows.sending.record import SendRecord


async def notify(send: SendRecord, kind: NoticeKind, suffix: str) -> None:
    """Start the notice as an abandoned child: it outlives this send and retries on its own."""
    if not (send._current or workflow.patched(NOTIFY_PATCH)) or not send._request.notify:
        return
    request = send._request
    notice = Notice(
        notice_id=f"notify-{request.send_id}-{suffix}",
        kind=kind,
        mailbox=request.mailbox,
        at=workflow.now(),
        send_id=request.send_id,
        requester=request.requester,
        draft=light_draft(send._draft()),
        expires_at=send._expires_at if kind == "approval_requested" else None,
        mode=send._mode,
        proof=request.notice_proof,
    )
    if send._approved is not None:
        # The notice shows the approved edits: their proof and the original's digests go with it.
        original = draft_digests(light_draft(request.draft))
        notice = notice.model_copy(update={"decision": send._decision, "original": original})
    await start_notice(notice, f"{kind} for {request.send_id}")


async def start_slack(send: SendRecord) -> str | None:
    """Post this round to the mailbox's Slack channel (an abandoned child); its id, or None."""
    request = send._request
    if not request.slack_channel or not (send._current or workflow.patched(SLACK_PATCH)):
        return None
    assert send._expires_at is not None
    slack_id = f"slack-{request.send_id}-{send._approval_rounds}"
    message = SlackRequest(
        send_id=request.send_id,
        mailbox=request.mailbox,
        channel=request.slack_channel,
        requester=request.requester,
        draft=light_draft(send._draft()),
        expires_at=send._expires_at,
    )
    await post_message(message, slack_id)
    return slack_id


async def settle_slack(send: SendRecord, slack_id: str | None, status: SlackStatus, by: str, reason: str = "") -> None:
    """Tell the round's Slack message how it ended; a message that is gone changes nothing here."""
    if slack_id is None:
        return
    outcome = SlackOutcome(status=status, by=by, at=workflow.now(), reason=reason)
    await settle_message(slack_id, outcome)
