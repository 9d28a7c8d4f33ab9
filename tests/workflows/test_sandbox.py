"""The workflow sandbox: workflow modules stay guarded, everything else is not re-imported per send."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxRestrictions, _importer

from tests.support.histories import HISTORIES
from workflows.sandbox import PASSTHROUGH, workflow_runner
from workflows.temporal import data_converter
from workflows.worker import WORKFLOWS


@pytest.fixture
def sandbox_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules a sandbox imported for itself (not passed through from the host)."""
    loads: list[str] = []
    original = _importer.Importer._maybe_passthrough_module

    def spy(self: _importer.Importer, name: str) -> object:
        module = original(self, name)
        if module is None:
            loads.append(name)
        return module

    monkeypatch.setattr(_importer.Importer, "_maybe_passthrough_module", spy)
    return loads


async def test_a_send_re_imports_only_its_own_workflow_module(sandbox_loads: list[str]) -> None:
    text = (HISTORIES / "send-approved.json").read_text()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner())

    async def loads_replaying(copies: int) -> Counter[str]:
        async def histories() -> AsyncIterator[WorkflowHistory]:
            for i in range(copies):
                yield WorkflowHistory.from_json(f"send-{i}", text)

        sandbox_loads.clear()
        await replayer.replay_workflows(histories())
        return Counter(sandbox_loads)

    # Each replay also checks every workflow definition once; one send more shows what a send costs:
    # its own workflow code (send.py and its steps in sending/), once each, and nothing else.
    per_send = await loads_replaying(3) - await loads_replaying(2)
    assert per_send["workflows.send"] == 1
    assert set(per_send.values()) == {1}
    for module in per_send:
        assert module == "workflows.send" or module.startswith("workflows.sending"), module
        assert module not in PASSTHROUGH, module


def test_the_guard_stays_on_workflow_code() -> None:
    restrictions = workflow_runner().restrictions
    default = SandboxRestrictions.default
    # Clocks, randomness and I/O stay as restricted as Temporal's default makes them.
    assert restrictions.invalid_modules == default.invalid_modules
    assert restrictions.invalid_module_members == default.invalid_module_members
    assert not restrictions.passthrough_all_modules
    for workflow_class in WORKFLOWS:
        module = workflow_class.__module__
        assert not any(
            module == passed or module.startswith(f"{passed}.") for passed in restrictions.passthrough_modules
        ), module
