"""Free local ports, for peers and stacks that tests and benchmarks start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below the kernel's ephemeral range and above most fixed service ports (5432, 7233, 8025, 8233).
FLOOR = 20000
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Its own seed: a plugin that seeds `random` alike in every test process must not make them pick alike.
_picker = random.Random()
_handed_out: set[int] = set()


def ephemeral_floor() -> int:
    """Where the kernel's ephemeral ports begin (32768 on Linux unless configured)."""
    try:
        return int(EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, for a program about to bind it.

    Between this check and that bind, the port is free for anyone. One the OS picks (bind to 0)
    lies in the ephemeral range, from which the kernel also gives a local port to every outgoing
    connection on the machine (the dev server's, the worker's, other test runs'): in whole-suite
    runs such a port was taken meanwhile. So the port is drawn at random from below that range,
    where only a program that names the port binds it, and never handed out twice per process.
    """
    top = ephemeral_floor()
    for _ in range(200 if top - FLOOR >= 1000 else 0):
        port = _picker.randrange(FLOOR, top)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))  # no SO_REUSEADDR: a port in TIME_WAIT counts as taken
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # an unusual ephemeral range: let the OS pick
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
