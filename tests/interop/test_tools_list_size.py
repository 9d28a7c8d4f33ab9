"""The tools/list answer is context a model pays for on every session: measure it, keep a ceiling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.interop import ROOT, list_all_tools, sdk_client
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

# A ceiling, not a target: it catches a tool that balloons (a big output schema, a pasted
# docstring). docs/mcp.md states the current size; lower this as the
# descriptions and schemas get tighter.
BUDGET_BYTES = 47_000


async def test_tools_list_answer_is_measured_and_within_budget(stack: Serve) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tools_list_size.py"), "--data-dir", str(stack.data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    async with sdk_client(stack, "http") as client:
        tools = await list_all_tools(client)
    assert report["tools"] == len(tools)
    assert {t["name"] for t in report["per_tool"]} == {t.name for t in tools}
    # The breakdown accounts for the answer: the tools are nearly all of it.
    assert sum(t["bytes"] for t in report["per_tool"]) <= report["result_bytes"] < report["wire_bytes"]
    print(f"\ntools/list answer: {report['wire_bytes']} bytes on the wire for {report['tools']} tools")
    heaviest = ", ".join(f"{t['name']} {t['bytes']}" for t in report["per_tool"][:3])
    assert report["wire_bytes"] <= BUDGET_BYTES, f"tools/list is {report['wire_bytes']} bytes; heaviest: {heaviest}"
