"""Every ``workflow.patched`` id, and when each can be retired.

A patch keeps the histories of workflows that started on older code replaying: ``patched(id)``
is False while a history recorded without the change replays, True everywhere else. Retiring
one takes two releases, as temporalio/samples-python's ``patching/`` sample shows:

1. **deprecate**: once no execution that started before the fleet ran the patch can still be
   running, delete the old branch and replace ``if workflow.patched(id)`` by
   ``workflow.deprecate_patch(id)`` before the new branch. Histories without the marker (most
   under tests/histories/earlier/) are deleted with the old branch.
2. **remove**: once no execution that started on code still calling ``patched(id)`` can be
   running, delete the ``deprecate_patch(id)`` call and the constant here.

"Can still be running" is bounded by each workflow's longest life, and checked with
``temporal workflow list --query "WorkflowType='<type>' AND ExecutionStatus='Running' AND
StartTime < '<date every worker ran the release>'"`` finding nothing (a run that continued as
new has its own StartTime, and a new run takes the new branch).

Longest life: a bulk trash request (BulkTrashWorkflow) its approval window (up to 8,760 hours)
plus the trash activity; a send (SendEmailWorkflow) 2 years and 2 days (``send_at`` up to 365 days ahead,
an approval window up to 8,760 hours, ``DELIVERY_DEADLINE``); a reply wait 7 days; a mailbox
(MailboxWorkflow) never ends, so only its continue-as-new (``HISTORY_LIMIT`` events or
Temporal's suggestion) retires a patch: a quiet mailbox may keep an old run for a long time.

| id | workflow | added | deprecate when no run started before it can run: |
|---|---|---|---|
| notify-humans-v1 | send | 2026-11-30 | send, ≤ 2 y 2 d |
| admit-with-delivery-v1 | send | 2026-11-30 | send, ≤ 2 y 2 d; the `admit`/`deliver` activities go |
| provider-hold-v1 | send | 2026-11-30 | send, ≤ 2 y 2 d |
| provider-hold-v2 | send | 2026-12-02 | send, ≤ 2 y 2 d; v1's poll loop goes |
| cancel-before-delivery-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| expiry-wins-at-deadline-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| temporal-cancel-ends-cancelled-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| front-door-proofs-v1 | send, mailbox | 2026-12-02 | send (≤ 2 y 2 d) and mailbox (its continue-as-new) |
| held-expiry-outcome-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| slack-message-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| signed-decisions-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d; then `check_proof` serves mailboxes only |
| signed-decisions-first-task-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d |
| one-marker-v1 | send | 2026-12-02 | send, ≤ 2 y 2 d; with it, the old branches of every send patch above |
| reply-wait-continue-as-new-v1 | reply wait | 2026-12-02 | reply wait, ≤ 7 d |
| trash-notify-v1 | bulk trash | 2026-12-02 | bulk trash, ≤ its approval window (up to 8,760 h) |
| trash-notice-per-run-v1 | bulk trash | 2026-12-02 | bulk trash, ≤ its approval window (up to 8,760 h) |

Remove each ``deprecate_patch`` after the same bound again, counted from the release that
deprecated it. What each patch changed is beside its id below; tests/workflows/test_replay.py
holds this table to the ids the workflows call.
"""

from __future__ import annotations

# SendEmailWorkflow -----------------------------------------------------------------------------
# Notifying humans added commands to this workflow; histories from before it replay without them.
NOTIFY_PATCH = "notify-humans-v1"
# One activity admits and delivers, instead of one each: a round trip less per send.
ADMIT_WITH_DELIVERY_PATCH = "admit-with-delivery-v1"
# Waiting for a provider's own human (a gated MultiMail mailbox) added commands after delivery;
# histories from before it never held a receipt with ``held`` and replay without them.
PROVIDER_HOLD_PATCH = "provider-hold-v1"
# v2: the hold is watched by one long-running, heartbeating activity instead of a timer and an
# activity per poll (about 11 events each; a long window could reach Temporal's event limit).
PROVIDER_WATCH_PATCH = "provider-hold-v2"
# A cancel accepted before the first workflow task of an autonomous or monitored send went on to
# deliver; now it ends the send.
CANCEL_BEFORE_DELIVERY_PATCH = "cancel-before-delivery-v1"
# A decision handled in the task where the approval timer fired won; now the window is closed
# from its deadline on, and expiry wins.
EXPIRY_WINS_PATCH = "expiry-wins-at-deadline-v1"
# A cancel from Temporal while a send waited ended the workflow as Canceled with its status left
# at pending_approval (or scheduled); now it ends as cancelled.
TEMPORAL_CANCEL_PATCH = "temporal-cancel-ends-cancelled-v1"
# A held send whose window ends reports what the provider's answer to the cancel says (approved
# and sent at the last moment) instead of "expired" whatever it said.
HELD_EXPIRY_PATCH = "held-expiry-outcome-v1"
# A mailbox with a slack_channel: each approval round posts a Slack message and settles it.
SLACK_PATCH = "slack-message-v1"
# A signed decision on a send whose request carries the public key is verified in the workflow
# task where it arrives, instead of by the check_proof activity (a round trip and a second task).
SIGNED_DECISIONS_PATCH = "signed-decisions-v1"
# A signed decision that comes with the send's first task (approved before a worker ran it, as
# under load) is handled before run() chose signatures: it went to the check_proof activity (a
# round trip and a second task); now its handler chooses signatures itself.
FIRST_TASK_SIGNED_PATCH = "signed-decisions-first-task-v1"
# A send records this one marker, in its first task, instead of one per send patch above (each a
# marker and a TemporalChangeVersion upsert, so 2 events and a visibility write): code with this
# patch has all of them, so a send that started on it takes every new branch without asking.
# Histories without it ask each patch where they always did. Retiring it retires all of them.
# Only the patches above are implied (``self._current or workflow.patched(...)``): a send patch
# added after this one did not exist when such a send started, so it is asked as usual.
ONE_MARKER_PATCH = "one-marker-v1"

# SendEmailWorkflow and MailboxWorkflow ---------------------------------------------------------
# A decision (send) or a loosening (mailbox) is checked for its front door's proof (an activity)
# before it counts.
PROOFS_PATCH = "front-door-proofs-v1"

# ReplyWaitWorkflow -----------------------------------------------------------------------------
# Continuing as new added a command; histories from before it never reached the limit here.
CONTINUE_PATCH = "reply-wait-continue-as-new-v1"

# BulkTrashWorkflow -----------------------------------------------------------------------------
# A trash request tells the approvers (a NotifyWorkflow) and posts to Slack (a SlackWorkflow),
# both abandoned children, and settles its Slack message once decided.
TRASH_NOTIFY_PATCH = "trash-notify-v1"
# A request asked again after it expired runs under the same id: its notice had the earlier
# run's id, hence its Message-ID, and was dropped as a duplicate. Now the notice id names the run.
TRASH_NOTICE_PER_RUN_PATCH = "trash-notice-per-run-v1"
