"""Every tool schema works in strict mode, checked with the client that applies it (issue 21, item 5).

openai-agents converts MCP tool schemas to OpenAI's strict mode and, when one will not convert
(an external `$ref`, an object that allows undeclared properties), silently falls back to
non-strict for that tool. Its own converter is the judge here, on a real `mailgate serve`.
"""

from __future__ import annotations

import copy
import json

import pytest
from agents import Agent
from agents.mcp import MCPServerStreamableHttp, MCPUtil
from agents.strict_schema import ensure_strict_json_schema

from tests.support.interop import AGENT_TOOLS
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


async def test_openai_agents_takes_every_tool_in_strict_mode(stack: Serve) -> None:
    params = {"url": f"{stack.url}/mcp", "headers": {"Authorization": f"Bearer {stack.token('agent')}"}}
    async with MCPServerStreamableHttp(params=params, client_session_timeout_seconds=30) as server:  # type: ignore[arg-type]
        tools = await server.list_tools()
        assert {t.name for t in tools} >= AGENT_TOOLS
        agent = Agent(name="strict")
        not_strict, with_refs = [], []
        for tool in tools:
            converted = MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True, agent=agent)
            if not converted.strict_json_schema:
                not_strict.append(tool.name)
            # Output schemas under the same rules: inline and closed.
            if tool.output_schema is not None:
                ensure_strict_json_schema(copy.deepcopy(tool.output_schema), _reject_open_objects=True)
            if "$ref" in json.dumps([tool.input_schema, tool.output_schema]):
                with_refs.append(tool.name)
        assert not_strict == [], f"openai-agents falls back to non-strict for {not_strict}"
        assert with_refs == []
