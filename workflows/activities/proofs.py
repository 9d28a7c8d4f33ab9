"""The activity that checks front-door proofs for workflows, and the workflow side that asks it.

The key stays in the worker's settings: a workflow's history holds only the verdict.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from workflows.trust.proofs import ProofCheck, verify


class ProofActivities:
    """Checks proofs for workflows, as an activity: the key stays in the worker's settings."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @activity.defn
    async def check_proof(self, check: ProofCheck) -> bool:
        return verify(self._key, check.kind, check.subject, check.fields, check.proof)


async def proven(check: ProofCheck) -> bool:
    """Inside a workflow: whether a proof holds, asked of a worker as an activity, so the history
    holds the verdict and never the key. (A regular activity, not a local one: a local activity's
    result can reach a replay in another workflow task than it reached the original run, and a
    ``workflow.patched`` after it then answers differently.)"""
    return await workflow.execute_activity_method(
        ProofActivities.check_proof, check, start_to_close_timeout=timedelta(seconds=10)
    )
