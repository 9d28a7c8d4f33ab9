"""The workflow sandbox: workflow modules stay guarded, everything else is not re-imported per send."""

from __future__ import annotations

import ast
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxRestrictions, _importer

import workflows
from tests.support.histories import HISTORIES
from workflows.sandbox import PASSTHROUGH, CompiledOnce, workflow_runner
from workflows.send import SendEmailWorkflow
from workflows.sending.record import SendRecord
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


async def test_a_send_runs_its_steps_that_call_workflow_apis_and_not_its_pure_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[str] = []
    run = SourceFileLoader.exec_module

    def spy(self: SourceFileLoader, module: ModuleType) -> None:
        executed.append(module.__name__)
        run(self, module)

    monkeypatch.setattr(SourceFileLoader, "exec_module", spy)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner())

    async def runs(copies: int) -> Counter[str]:
        executed.clear()
        await _replay_sends(replayer, copies)
        return Counter(executed)

    per_send = await runs(3) - await runs(2)
    # The rules of decisions.py (and options.py) are pure: they come from the host, never re-run.
    assert per_send == Counter(
        [
            "workflows",
            "workflows.send",
            "workflows.sending",
            "workflows.sending.announcements",
            "workflows.sending.delivery",
            "workflows.sending.provider_hold",
            "workflows.sending.record",
        ]
    )


def test_the_send_workflow_class_has_one_base() -> None:
    # Temporal checks a workflow class and every base of it each time the sandbox defines it (once
    # per instance); the steps are functions over the record, so there is one base to check.
    assert SendEmailWorkflow.__mro__ == (SendEmailWorkflow, SendRecord, object)


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


# What a passed-through module could use to make a workflow non-deterministic unnoticed: the sandbox
# no longer stands between it and these. parsing.py's lock and to_thread serve activities only.
UNGUARDED = {"random", "secrets", "time", "uuid", "os", "socket", "subprocess", "threading", "asyncio", "sqlite3"}
ALLOWED = {("workflows/mail/parsing.py", "asyncio"), ("workflows/mail/parsing.py", "threading")}
CLOCKS = {"now", "utcnow", "today", "time_ns", "monotonic"}


def _own_passthrough_files() -> list[Path]:
    root = Path(workflows.__file__).parent.parent
    files: list[Path] = []
    for module in PASSTHROUGH:
        if module.split(".")[0] == "workflows":
            path = root / module.replace(".", "/")
            files += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return files


def test_mailgates_passed_through_modules_reach_no_clock_randomness_or_io() -> None:
    root = Path(workflows.__file__).parent.parent
    found = []
    for path in _own_passthrough_files():
        name = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported = [node.module.split(".")[0]]
            else:
                imported = []
            found += [(name, m) for m in imported if m in UNGUARDED and (name, m) not in ALLOWED]
            if isinstance(node, ast.Attribute) and node.attr in CLOCKS:
                found.append((name, node.attr))
    assert _own_passthrough_files(), "no module of mailgate's own is passed through?"
    assert found == []


SEND_CODE = Path(workflows.__file__).parent
RECORD = SEND_CODE / "sending" / "record.py"


@pytest.fixture
def code_loads(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The workflow package's files the import system read (a source or its .pyc), and the sources
    it compiled, while a test replays."""
    reads: list[str] = []
    compiled: list[str] = []
    read, compile_source = SourceFileLoader.get_data, SourceFileLoader.source_to_code

    def spy_read(self: SourceFileLoader, path: str) -> bytes:
        if path.startswith(str(SEND_CODE)):
            reads.append(path)
        return read(self, path)

    def spy_compile(self: SourceFileLoader, data: bytes, path: str) -> object:
        compiled.append(str(path))
        return compile_source(self, data, path)

    monkeypatch.setattr(SourceFileLoader, "get_data", spy_read)
    monkeypatch.setattr(SourceFileLoader, "source_to_code", spy_compile)
    return reads, compiled


async def _replay_sends(replayer: Replayer, copies: int) -> None:
    text = (HISTORIES / "send-one-marker-approved.json").read_text()

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for i in range(copies):
            yield WorkflowHistory.from_json(f"send-{i}", text)

    await replayer.replay_workflows(histories())


async def test_a_workflow_module_is_compiled_once_per_process(
    code_loads: tuple[list[str], list[str]], sandbox_loads: list[str]
) -> None:
    reads, compiled = code_loads
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner())
    await _replay_sends(replayer, 1)
    reads.clear()
    sandbox_loads.clear()
    await _replay_sends(replayer, 2)
    # Each new instance still runs its own copy of send.py and its steps (the guard), from code
    # compiled before: no source read and compiled again, no .pyc read and unmarshalled again.
    assert Counter(sandbox_loads)["workflows.send"] == 1 + 2  # the replay's check of the definition, two sends
    assert reads == []
    assert compiled == []


async def test_a_changed_workflow_source_is_compiled_again(code_loads: tuple[list[str], list[str]]) -> None:
    reads, compiled = code_loads
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter(), workflow_runner=workflow_runner())
    await _replay_sends(replayer, 1)
    before = RECORD.stat()
    os.utime(RECORD, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    try:
        # Changed on disk (its modification time, as a .pyc is checked): compiled again, once.
        await _replay_sends(replayer, 1)
        assert compiled == [str(RECORD)]
        reads.clear()
        await _replay_sends(replayer, 1)
        assert reads == []
        assert compiled == [str(RECORD)]
    finally:
        os.utime(RECORD, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_code_is_cached_only_inside_a_sandbox() -> None:
    workflow_runner()
    assert any(isinstance(finder, CompiledOnce) for finder in sys.meta_path)
    # Outside a workflow sandbox (here: the test itself) imports go on as usual.
    assert CompiledOnce().find_spec("workflows.send", None) is None
