"""The workflow sandbox mailgate's workers (and replay tests) run: Temporal's default, with the
modules that are deterministic by construction passed through, and workflow code compiled once.

The sandbox re-imports each workflow's own module for every workflow instance, so a workflow
cannot keep state between runs nor reach clocks, randomness or I/O unnoticed: that guard stays
on the workflow modules (send and the steps in sending/ that call workflow APIs, mailbox, notify,
reply_wait, watcher, slack). Modules that only define pydantic models, constants or pure
functions of their arguments gain nothing from being re-imported per instance and cost CPU
each time, so they come from the host, as
temporalio/samples-python passes its models through with ``with_passthrough_modules``. The
activity modules that workflow modules import (for the activities' names and types) are
passed through by ``workflow.unsafe.imports_passed_through()`` where they are imported.

Re-importing a module means reading and compiling its source, or reading its ``.pyc``, each
time: every instance compiled send.py and its steps again where no fresh ``.pyc`` is on disk
(``PYTHONDONTWRITEBYTECODE=1``, common in containers). ``CompiledOnce`` keeps the compiled code of
the ``workflows`` modules a sandbox imports, per source file, its modification time and size (as
a ``.pyc`` is keyed); each instance still executes it afresh, so the guard is unchanged.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, SourceFileLoader
from types import CodeType, ModuleType

from temporalio import workflow
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
    "workflows.sending.decisions",  # whether a decision counts: rules over the send's record
    "workflows.sending.options",  # the send's activity options and size limits
    "workflows.slack_client.message",
    "workflows.temporal",
    "workflows.trust.proofs",
    "workflows.trust.signatures",
    "cryptography",  # Ed25519 verification in workflows.trust.signatures
)

# Source path -> (modification time in ns, size, code): one entry per file, replaced when it changes.
_compiled: dict[str, tuple[int, int, CodeType]] = {}


class _CompiledOnceLoader(SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        stat = os.stat(path)
        known = _compiled.get(path)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        code = super().get_code(fullname)
        assert code is not None  # a source file always has code
        _compiled[path] = (stat.st_mtime_ns, stat.st_size, code)
        return code


class CompiledOnce(importlib.abc.MetaPathFinder):
    """Inside a workflow sandbox, loads the ``workflows`` package's source modules with code compiled
    once per process; everywhere else, and for every other module, imports as usual."""

    package = "workflows"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] != self.package or not workflow.unsafe.in_sandbox():
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if type(spec.loader) is SourceFileLoader and spec.origin is not None:
                spec.loader = _CompiledOnceLoader(fullname, spec.origin)
            return spec
        return None


_install = threading.Lock()


def compile_once() -> None:
    """Put ``CompiledOnce`` first on ``sys.meta_path`` (once per process)."""
    with _install:
        if not any(isinstance(finder, CompiledOnce) for finder in sys.meta_path):
            sys.meta_path.insert(0, CompiledOnce())


def workflow_runner() -> SandboxedWorkflowRunner:
    compile_once()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
