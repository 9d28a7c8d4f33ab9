"""The workflow sandbox mailgate's workers (and replay tests) run: Temporal's default, with the
modules that are deterministic by construction passed through.

The sandbox re-imports each workflow's own module for every workflow instance, so a workflow
cannot keep state between runs nor reach clocks, randomness or I/O unnoticed: that guard stays
on the workflow modules (send and its steps in sending/, mailbox, notify, reply_wait, watcher,
slack). Modules that only
define pydantic models, constants or pure functions of their arguments gain nothing from being
re-imported per instance and cost CPU each time, so they come from the host, as
temporalio/samples-python passes its models through with ``with_passthrough_modules``. The
activity modules that workflow modules import (for the activities' names and types) are
passed through by ``workflow.unsafe.imports_passed_through()`` where they are imported.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Pure: no clock, randomness, I/O or module state that a workflow could observe changing.
PASSTHROUGH = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "workflows.errors",
    "workflows.ids",
    "workflows.mail",  # email format code: addresses, MIME, parsing, HTML to text, threading
    "workflows.models",
    "workflows.notices",
    "workflows.patches",
    "workflows.policy",
    "workflows.read_models",
    "workflows.sending.options",  # the send's activity options and size limits
    "workflows.slack_client.message",
    "workflows.temporal",
    "workflows.trust.proofs",
    "workflows.trust.signatures",
    "cryptography",  # Ed25519 verification in workflows.trust.signatures
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
