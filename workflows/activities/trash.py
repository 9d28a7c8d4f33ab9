"""The activity that carries out an approved bulk trash, after checking every proof again.

Idempotent: trashing an email already in the trash answers "already in trash" and changes
nothing, so a retry after a worker died part way finishes the rest without harm.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client

from workflows.ids import mailbox_workflow_id
from workflows.mailbox import MailboxWorkflow
from workflows.mailbox_models import ActionNote
from workflows.providers.base import EmailNotFound, ProviderSet
from workflows.trash_approval import TrashDone, TrashJob, TrashOutcome
from workflows.trust.ledger import LocalLedger
from workflows.trust.proofs import NO_PROOF, decision_fields, fields_of, verify


def job_problem(key: bytes, job: TrashJob, workflow_id: str) -> str | None:
    """Why this trash was not asked by mailgate and approved by a person, or None when it was."""
    request, decision = job.request, job.decision
    if request.request_id != workflow_id:
        return f"the trash request {NO_PROOF}"
    if not verify(key, "request", request.request_id, fields_of(request), request.proof):
        return f"the trash request {NO_PROOF}"
    if decision.decision != "approve":
        return "the trash needs a human's approval and has none"
    if not verify(key, "decision", request.request_id, decision_fields(decision), decision.proof):
        return f"the approval {NO_PROOF}"
    approver = decision.approver.strip().lower()
    if approver == request.requester.strip().lower():
        return f"{decision.approver} asked for this trash and may not approve it"
    approvers = [a.lower() for a in request.approvers]
    if approvers and approver not in approvers:
        return f"{decision.approver} is not an approver of {request.mailbox}"
    return None


class TrashActivities:
    def __init__(
        self, client: Client, providers: ProviderSet, proof_key: bytes, ledger: LocalLedger | None = None
    ) -> None:
        self._client = client
        self._providers = providers
        self._key = proof_key
        # Claims each request for one run (workflows/trust/ledger.py): a finished request run again
        # in Temporal, with its recorded request and approval, trashes nothing the second time.
        self._ledger = ledger

    @activity.defn
    async def trash_emails(self, job: TrashJob) -> TrashDone:
        problem = job_problem(self._key, job, activity.info().workflow_id or "")
        if problem:
            activity.logger.warning("refused a bulk trash: %s", problem)
            return TrashDone(refused=f"refused: {problem}")
        request = job.request
        mailbox = self._client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(request.mailbox))
        mode = (await mailbox.query(MailboxWorkflow.describe)).config.mode
        if mode == "read_only":
            # Made read_only after the request: nothing may change now, approved or not.
            return TrashDone(refused=f"mailbox {request.mailbox} is read_only now; nothing was trashed")
        if self._ledger is not None:
            run_id = activity.info().workflow_run_id or ""
            args = (request.request_id, run_id, request.mailbox, datetime.now(UTC))
            claimed = await asyncio.to_thread(self._ledger.claim_trash, *args)
            if claimed is not None:
                activity.logger.warning("refused a bulk trash: %s", claimed)
                return TrashDone(refused=f"refused: {claimed}")
        provider = self._providers.for_mailbox(request.mailbox)
        outcomes: list[TrashOutcome] = []
        for email_id in request.email_ids:
            activity.heartbeat(email_id)
            try:
                done = await provider.manage(request.mailbox, email_id, "trash", None, request.requester)
                outcomes.append(TrashOutcome(email_id=email_id, ok=True, result=done))
            except EmailNotFound:
                outcomes.append(TrashOutcome(email_id=email_id, ok=False, result="not found in this mailbox"))
            except ValueError as exc:
                outcomes.append(TrashOutcome(email_id=email_id, ok=False, result=str(exc)))
        changed = [o.email_id for o in outcomes if o.ok and not o.result.startswith("already")]
        if changed:
            by = job.decision.approver
            note = ActionNote(
                kind="email_trash",
                actor=request.requester,
                detail=f"trash (approved by {by}, {request.request_id}): {', '.join(changed)}",
            )
            await mailbox.execute_update(MailboxWorkflow.record_action, note)
        return TrashDone(outcomes=tuple(outcomes))
