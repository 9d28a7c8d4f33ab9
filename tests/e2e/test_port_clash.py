"""A port that is taken ends `mailgate serve` and `mailgate mcp` at once, with one line that says
which port and what to change, and leaves no process behind (issue 21, items 1 and 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import Serve

pytestmark = pytest.mark.e2e


def holder(port: int) -> socket.socket:
    """A dummy program holding the port, as another server on the machine would."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def processes_mentioning(text: str) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            yield int(entry.name)


@pytest.mark.parametrize("command", ["serve", "mcp"])
@pytest.mark.parametrize("taken", ["http", "smtp"])
def test_a_taken_port_ends_the_start_within_seconds_with_one_line(tmp_path: Path, command: str, taken: str) -> None:
    stack = Serve(tmp_path / "data")
    stack.data_dir.mkdir()
    port = stack.port if taken == "http" else stack.smtp_port
    env = stack.env()
    if command == "serve":
        args = ["serve", "--port", str(stack.port), "--smtp-port", str(stack.smtp_port)]
        args += ["--temporal-port", str(stack.temporal_port)]
        flag = "--port" if taken == "http" else "--smtp-port"
    else:  # Claude Desktop starts `mailgate mcp` with settings in its environment only
        args = ["mcp"]
        env |= {
            "MAILGATE_PORT": str(stack.port),
            "MAILGATE_SMTP_PORT": str(stack.smtp_port),
            "MAILGATE_TEMPORAL_PORT": str(stack.temporal_port),
        }
        flag = None
    variable = "MAILGATE_PORT" if taken == "http" else "MAILGATE_SMTP_PORT"
    with holder(port):
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=env,
            stdin=subprocess.PIPE,
            capture_output=True,
            text=True,
            timeout=20,  # the old code never ended: this raises instead
            check=False,
        )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("mailgate: ") and f"port {port}" in line and "taken" in line, line
    assert variable in line, line
    if flag:
        assert flag in line, line
    assert "Traceback" not in done.stderr
    # Nothing was started: no Temporal dev server, no child of any kind.
    assert not (stack.data_dir / "temporal.json").exists()
    assert list(processes_mentioning(str(stack.data_dir))) == []
    assert done.stdout == ""  # stdout belongs to MCP in stdio mode


def test_a_taken_temporal_port_names_the_flag_and_the_variable(tmp_path: Path) -> None:
    stack = Serve(tmp_path / "data")
    stack.data_dir.mkdir()
    with holder(stack.temporal_port):
        done = stack.cli(
            "serve",
            "--port",
            str(stack.port),
            "--smtp-port",
            str(stack.smtp_port),
            "--temporal-port",
            str(stack.temporal_port),
        )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {stack.temporal_port}" in lines[0]
    assert "--temporal-port" in lines[0] and "MAILGATE_TEMPORAL_PORT" in lines[0]
    assert list(processes_mentioning(str(stack.data_dir))) == []


def test_the_clash_leaves_the_dummy_alone_and_a_free_port_starts(serve: Serve) -> None:
    # After a refused start, the same data dir starts normally on free ports: the tests' Serve
    # does so by itself when a port it picked was taken before serve could bind it.
    taken = serve.port
    with holder(taken) as dummy:
        done = serve.cli("serve", "--port", str(serve.port), "--smtp-port", "0")
        assert done.returncode == 1
        serve.start()
        assert serve.port != taken and f"HTTP port {taken} on 127.0.0.1 is taken" in serve.log()
        assert dummy.getsockname() == ("127.0.0.1", taken)
    assert serve.stop() == 0
    assert os.environ.get("MAILGATE_DATA_DIR") != str(serve.data_dir)


def test_the_smtp_port_stays_reserved_while_temporal_starts(tmp_path: Path) -> None:
    # serve checked the SMTP port, let it go, and listened on it only once Temporal and the worker
    # were up: seconds in which the kernel could give it to any connection (the dev server's and
    # the worker's own) or another program, and serve then failed with "SMTP port ... is taken".
    # Here "Temporal" is a socket of the test's that accepts and never answers, so serve stays in
    # that stage while the test tries to take the port as any program could.
    stack = Serve(tmp_path / "data")
    stack.data_dir.mkdir()
    temporal = socket.socket()
    temporal.bind(("127.0.0.1", stack.temporal_port))
    temporal.listen()
    temporal.settimeout(60)
    stack.extra_env["MAILGATE_TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.temporal_port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(stack.port), "--smtp-port", str(stack.smtp_port)],
        env=stack.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        connection, _ = temporal.accept()  # serve got past its port checks and is starting
        for port in (stack.port, stack.smtp_port):
            with socket.socket() as other, pytest.raises(OSError, match="in use"):
                other.bind(("127.0.0.1", port))
        assert process.poll() is None
        connection.close()
    finally:
        os.killpg(process.pid, 9)
        process.wait()
        temporal.close()
