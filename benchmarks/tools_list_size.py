"""How many bytes the `tools/list` answer costs a model's context, measured on the wire.

Speaks raw JSON-RPC to `mailgate mcp` over stdio (initialize, then tools/list) and counts the
bytes of the response line exactly as the server wrote it, then breaks it down per tool.

    .venv/bin/python benchmarks/tools_list_size.py                 # starts its own stack (~5 s)
    .venv/bin/python benchmarks/tools_list_size.py --data-dir DIR  # uses the stack running for DIR
    .venv/bin/python benchmarks/tools_list_size.py --json          # machine-readable
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

PROTOCOL = "2025-11-25"


def free_port() -> int:
    # Its own copy of tests.support.ports.free_port: this file runs as a plain script, outside the package.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compact(value: Any) -> int:
    """Bytes of a JSON value written the way the server writes it (compact, UTF-8)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def exchange(env: dict[str, str], timeout: float) -> bytes:
    """The raw tools/list response line from a fresh `mailgate mcp` session."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "mcp",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # the stack's log; stdout carries only the protocol
    )
    assert process.stdin is not None
    assert process.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(message).encode() + b"\n")

    async def answer(request_id: int) -> bytes:
        assert process.stdout is not None
        while True:
            line = await process.stdout.readline()
            if not line:
                raise RuntimeError("mailgate mcp closed stdout before answering; run it by hand to see why")
            if json.loads(line).get("id") == request_id:
                return line.rstrip(b"\n")

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "tools-list-size", "version": "1"},
                },
            }
        )
        await asyncio.wait_for(answer(1), timeout)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        return await asyncio.wait_for(answer(2), timeout)
    finally:
        # Closing stdin ends the session; a stack `mailgate mcp` started stops with it.
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def measure(data_dir: Path | None, timeout: float = 90.0) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    with tempfile.TemporaryDirectory(prefix="mailgate-size-") as scratch:
        if data_dir is not None:
            env["MAILGATE_DATA_DIR"] = str(data_dir)
        else:
            # No stack given: `mailgate mcp` brings one up in a scratch dir on free ports.
            env |= {
                "MAILGATE_DATA_DIR": scratch,
                "MAILGATE_PORT": str(free_port()),
                "MAILGATE_SMTP_PORT": "0",
                "MAILGATE_TEMPORAL_PORT": str(free_port()),
                "MAILGATE_TEMPORAL_UI_PORT": str(free_port()),
            }
        line = asyncio.run(exchange(env, timeout))
    message = json.loads(line)
    if "result" not in message:
        raise RuntimeError(f"tools/list failed: {message.get('error')}")
    tools = message["result"]["tools"]
    per_tool = [
        {
            "name": tool["name"],
            "bytes": compact(tool),
            "description": compact(tool.get("description", "")),
            "input_schema": compact(tool.get("inputSchema", {})),
            "output_schema": compact(tool.get("outputSchema", {})) if "outputSchema" in tool else 0,
        }
        for tool in tools
    ]
    return {
        "protocol": PROTOCOL,
        "wire_bytes": len(line),
        "result_bytes": compact(message["result"]),
        "tools": len(tools),
        "per_tool": sorted(per_tool, key=lambda t: -int(t["bytes"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="use the mailgate stack running for this data dir")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = measure(args.data_dir)
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"tools/list answer: {report['wire_bytes']:,} bytes on the wire "
            f"({report['tools']} tools, JSON-RPC over stdio, protocol {report['protocol']})"
        )
        print(f"{'tool':<22}{'bytes':>8}{'descr':>8}{'input':>8}{'output':>8}")
        for tool in report["per_tool"]:
            print(
                f"{tool['name']:<22}{tool['bytes']:>8}{tool['description']:>8}"
                f"{tool['input_schema']:>8}{tool['output_schema']:>8}"
            )
    sys.stdout.flush()
    # `mailgate mcp` ran in a child process; this one never touched Temporal, so a plain exit is fine.


if __name__ == "__main__":
    main()
