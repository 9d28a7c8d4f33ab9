"""HTTP safety of a real `mailgate serve`: who gets in, from where, how much, and on which address.

tests/server/web/test_mcp_http.py checks the same middleware on an in-process app; this runs
the process users run, with its real settings, token files and listeners.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.settings import Settings
from server.stack import check_exposure
from tests.support.interop import list_all_tools
from tests.support.ports import free_port
from tests.support.serve import Serve

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
STREAMABLE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def http(stack: Serve) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


def bearer(stack: Serve, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role)}"}


def test_mcp_without_the_agent_token_gets_a_401_that_says_how_to_pass_it(stack: Serve, http: httpx.Client) -> None:
    cases = [("POST", "/mcp"), ("GET", "/sse"), ("POST", "/messages/?session_id=0")]
    for method, path in cases:
        for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}, bearer(stack, "admin")):
            response = http.request(method, path, json=MCP_INIT, headers={**STREAMABLE, **headers})
            assert response.status_code == 401, (path, headers, response.text)
            assert set(response.json()) == {"error", "error_description"}  # nothing about the server
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer ")
            expected_error = "invalid_token" if headers else "invalid_request"  # RFC 6750 section 3.1
            assert f'error="{expected_error}"' in challenge
            # No authorization server exists, so nothing points OAuth clients at a flow that cannot work.
            assert "resource_metadata" not in challenge
            if headers != bearer(stack, "admin"):
                assert "Authorization: Bearer TOKEN" in challenge and "agent.token" in challenge
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        assert http.get(path).status_code == 404
    # Where OAuth clients fall back to registering, the answer says what to do instead.
    registration = http.post("/register", json={"redirect_uris": ["http://localhost/cb"]})
    assert registration.status_code == 404 and "Authorization: Bearer TOKEN" in registration.text


@pytest.mark.parametrize(
    "path",
    [
        "/mcp%22%2C%20x%3D%22y",  # a quote and a comma: a parameter of our own choosing
        "/mcp%0d%0aX-Injected:%20yes",  # CR LF: a header of our own choosing
        "/sse%22%0d%0a%0d%0a<html>",
        "/messages/%22%2Cresource_metadata%3D%22https://evil.example",
    ],
)
def test_the_request_path_is_never_echoed_into_the_challenge(stack: Serve, http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 401, response.text
    assert "x-injected" not in response.headers
    challenge = response.headers["WWW-Authenticate"]
    assert "evil.example" not in challenge and 'x="y"' not in challenge and "x=" not in challenge
    # Exactly the two parameters mailgate sends, whatever the path.
    assert challenge.count('="') == 2, challenge
    assert "Traceback" not in response.text


def test_the_agent_token_cannot_reach_the_approver_api(stack: Serve, http: httpx.Client) -> None:
    for path in ("/api/approvals", "/api/approvals/send-aaaaaaaaaaaaaaaaaaaa/approve"):
        method = "GET" if path == "/api/approvals" else "POST"
        response = http.request(method, path, json={"approver": "agent"}, headers=bearer(stack, "agent"))
        assert response.status_code == 403, (path, response.text)


def test_a_foreign_origin_gets_403_on_every_route(stack: Serve, http: httpx.Client) -> None:
    # A page on another site (or a sandboxed frame, Origin "null") must not drive mailgate
    # through the user's browser, whatever token the request carries. The Temporal UI's origin
    # may call the codec endpoint, and nothing here.
    foreign = ("https://evil.example", f"http://evil.example:{stack.port}", "null", f"http://127.0.0.1:{stack.ui_port}")
    for origin in foreign:
        for method, path, headers in (
            ("POST", "/mcp", {**STREAMABLE, **bearer(stack, "agent")}),
            ("GET", "/sse", bearer(stack, "agent")),
            ("POST", "/messages/?session_id=0", bearer(stack, "agent")),
            ("GET", "/api/approvals", bearer(stack, "admin")),
            ("GET", "/", {}),
        ):
            response = http.request(method, path, json=MCP_INIT, headers={**headers, "Origin": origin})
            assert response.status_code == 403, (origin, path, response.text)
    # mailgate's own pages send their own origin, which passes.
    own = http.post("/mcp", json=MCP_INIT, headers={**STREAMABLE, **bearer(stack, "agent"), "Origin": stack.url})
    assert own.status_code == 200, own.text


def test_an_unexpected_host_gets_421(stack: Serve, http: httpx.Client) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, so the browser connects here but sends
    # Host: evil.example. Only the names mailgate serves (with its port) are answered.
    for host in (f"evil.example:{stack.port}", "evil.example", f"127.0.0.1:{stack.port + 1}", "localhost"):
        for method, path, headers in (
            ("POST", "/mcp", {**STREAMABLE, **bearer(stack, "agent")}),
            ("GET", "/api/approvals", bearer(stack, "admin")),
            ("GET", "/", {}),
        ):
            response = http.request(method, path, json=MCP_INIT, headers={**headers, "Host": host})
            assert response.status_code == 421, (host, path, response.text)
    for host in (f"localhost:{stack.port}", f"127.0.0.1:{stack.port}"):
        assert http.get("/healthz", headers={"Host": host}).status_code == 200


def test_oversized_requests_get_413(stack: Serve, http: httpx.Client) -> None:
    huge = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"x" * (5 * 1024 * 1024) + b'"}}'
    for path in ("/mcp", "/messages/?session_id=0"):
        response = http.post(path, content=huge, headers={**STREAMABLE, **bearer(stack, "agent")})
        assert response.status_code == 413, (path, response.status_code)
    # Without the token the body is never read: the answer is the 401.
    assert http.post("/mcp", content=huge, headers=STREAMABLE).status_code == 401


def listening(port: int) -> set[str]:
    """Addresses with a TCP socket listening on this port, from the kernel's own tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hexport = local.partition(":")
                if state != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if width == 8 else socket.AF_INET6
                found.add(socket.inet_ntop(family, words))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_by_default_every_listener_is_on_loopback_only(stack: Serve) -> None:
    ports = {"HTTP": stack.port, "SMTP": stack.smtp_port, "Temporal": stack.temporal_port}
    for name, port in ports.items():
        assert listening(port) == {"127.0.0.1"}, f"{name} port {port} listens on {listening(port)}"


def run_mailgate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env={**clean, "MAILGATE_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_binding_beyond_loopback_without_both_tokens_is_refused_at_start(tmp_path: Path) -> None:
    port, temporal = free_port(), free_port()
    ports = ["--port", str(port), "--smtp-port", "0", "--temporal-port", str(temporal)]
    attempts = [
        run_mailgate(tmp_path, "serve", "--host", "0.0.0.0", *ports),  # noqa: S104
        run_mailgate(tmp_path, "serve", "--host", "192.0.2.10", *ports, MAILGATE_AGENT_TOKEN="a" * 32),
        run_mailgate(tmp_path, "mcp", MAILGATE_HOST="0.0.0.0", MAILGATE_ADMIN_TOKEN="b" * 32),  # noqa: S104
    ]
    for done in attempts:
        assert done.returncode != 0, done.stderr
        assert "exposes mailgate beyond this machine" in done.stderr
        assert "MAILGATE_AGENT_TOKEN" in done.stderr and "MAILGATE_ADMIN_TOKEN" in done.stderr
    # Refused before anything started: no Temporal, no listener.
    assert not (tmp_path / "data" / "temporal.json").exists()
    assert listening(port) == set() and listening(temporal) == set()


def test_loopback_names_need_no_tokens_and_other_hosts_need_both() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        check_exposure(Settings(host=host))
    check_exposure(Settings(host="0.0.0.0", agent_token="a" * 32, admin_token="b" * 32))  # noqa: S104


@dataclass
class HostServe(Serve):
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def can_bind(host: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, 0))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not can_bind("127.0.0.2"), reason="needs 127.0.0.2 (Linux routes all of 127/8 to lo)")
async def test_with_both_tokens_it_binds_the_given_host_and_says_it_is_exposed(tmp_path: Path) -> None:
    # 127.0.0.2 stands in for a LAN address: mailgate treats every host but the loopback names
    # as exposed, and the test reaches nothing beyond this machine.
    server = HostServe(tmp_path / "data", host="127.0.0.2")
    server.data_dir.mkdir()
    agent, admin = "agent-" + "a" * 26, "admin-" + "b" * 26
    server.extra_env = {"MAILGATE_HOST": server.host, "MAILGATE_AGENT_TOKEN": agent, "MAILGATE_ADMIN_TOKEN": admin}
    try:
        server.start()
        assert "exposed:      listening on 127.0.0.2" in server.log()
        assert listening(server.port) == {"127.0.0.2"}
        assert not (server.data_dir / "agent.token").exists()  # the configured tokens, nothing generated
        assert httpx.post(f"{server.url}/mcp", json=MCP_INIT, headers=STREAMABLE).status_code == 401
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {agent}"}, timeout=30) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
        ):
            assert "durable_send" in {t.name for t in await list_all_tools(client)}
    finally:
        server.stop()
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(server.temporal_pid(), signal.SIGKILL)
