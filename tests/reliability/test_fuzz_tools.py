"""Hostile input: every MCP tool, fuzzed from its own input schema and beyond it.

Arguments come from the tool's JSON schema, from arbitrary JSON, and from schema-shaped values
salted with header-injection strings. Every answer must be a result
or a validation error: never the SDK's bare "Error executing tool X" (an unhandled exception),
and a refused call must leave no send and no mailbox behind.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer

from server.app import Mailgate
from server.mcp_server import build_mcp
from tests.support.loop_thread import LoopThread, Stack

# Registration reads no application state but the secret key (requestState's seal), so the
# schemas can be listed at collection time.
_SCHEMAS_ONLY = cast(Mailgate, SimpleNamespace(secrets=SimpleNamespace(secret_key=b"schemas only")))
_TOOLS = {tool.name: tool for tool in build_mcp(_SCHEMAS_ONLY)._tool_manager.list_tools()}

HOSTILE = [
    "bob@example.com\r\nBcc: eve@evil.com",
    "=?UTF-8?Q?=0A?=Bcc: eve@evil.com",
    "alice@example.org)<bob@example.com>",
    '"alice@bank.com" <eve@evil.com>',
    "BIG",  # stands for 100,000 characters, built when used (a literal would flood every report)
    "\x00",
    "../../etc/passwd",
    "'; DROP TABLE messages; --",
    "send-aaaaaaaaaaaaaaaaaaaa",
    "ünïcødé ✉ 📧",
    "²",  # a digit to str.isdigit(), not to int()
    "١٢٣",
    "",
]


def from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values for the JSON-schema subset pydantic writes: objects, arrays, scalars, enums, anyOf, $ref."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return st.one_of(*(from_schema(option, defs) for option in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = [k for k in properties if k in schema.get("required", [])]
        optional = [k for k in properties if k not in required]
        return st.fixed_dictionaries(
            {k: from_schema(properties[k], defs) for k in required},
            optional={k: from_schema(properties[k], defs) for k in optional},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), defs), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**40)), schema.get("maximum", 2**40))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return json_values


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


def salted(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid arguments with some string fields swapped for hostile ones."""
    properties = schema.get("properties", {})

    def salt(args: dict[str, Any], picks: list[tuple[str, str]]) -> dict[str, Any]:
        out = dict(args)
        for key, pick in picks:
            value = "x" * 100_000 if pick == "BIG" else pick
            if key in properties:
                out[key] = [value] if properties[key].get("type") == "array" else value
        return out

    keys = st.sampled_from(sorted(properties) or ["_"])
    return st.builds(salt, from_schema(schema), st.lists(st.tuples(keys, st.sampled_from(HOSTILE)), max_size=3))


def arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        from_schema(schema),
        salted(schema),
        st.dictionaries(st.sampled_from(sorted(schema.get("properties", {})) or ["x"]), json_values, max_size=6),
    )


async def footprint(app: Mailgate) -> tuple[int, int]:
    sends = await app.sends.search(limit=100)
    return len(sends.sends), len(await app.mailboxes.all())


async def built(app: Mailgate) -> MCPServer:
    return build_mcp(app)


async def call(server: MCPServer, name: str, args: dict[str, Any], real: dict[str, str]) -> tuple[bool, str]:
    # Point half the calls at things that exist, so validation past "not found" is reached too.
    args = {k: real.get(k, v) if isinstance(v, str) and hash(v) % 2 == 0 else v for k, v in args.items()}
    async with Client(server) as client:  # a session of its own for each call
        result = await client.call_tool(name, args)
    text = " ".join(getattr(block, "text", "") for block in result.content)
    return result.is_error, text


@pytest.mark.parametrize("name", sorted(_TOOLS))
def test_every_tool_answers_hostile_arguments_with_a_result_or_a_clear_error(
    threaded: tuple[LoopThread, Stack], name: str
) -> None:
    runner, stack = threaded
    app = stack.app
    schema = _TOOLS[name].parameters
    real = {"mailbox": app.settings.default_mailbox, "address": app.settings.default_mailbox}
    # One server for all the examples, as in production (building one takes longer than a call).
    server = runner.run(built(app))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(args=arguments(schema))
    def fuzz(args: dict[str, Any]) -> None:
        before = runner.run(footprint(app))
        refused, text = runner.run(call(server, name, args, real))
        assert text.strip() != f"Error executing tool {name}", f"unhandled exception for {args!r}"
        if refused:
            assert runner.run(footprint(app)) == before, f"a refused call changed state: {args!r}"

    fuzz()
