"""The embedded Temporal UI behind a Host and Origin check.

The dev server's UI answers any Host and has no authentication, so a web page that rebinds its
own DNS name to 127.0.0.1 could drive it from the human's browser (approve nothing, since
decisions need mailgate's proofs, but read every draft). The UI therefore listens on a private
loopback port, and this proxy, on the port users open, passes a connection on only when its
first request names a loopback Host (and, if it sends one, a loopback Origin). A browser keeps a
connection to one origin, so later requests on it carry the same Host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

HEAD_LIMIT = 64 * 1024


def _loopback_names(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def refusal(head: bytes, port: int) -> str | None:
    """Why this request head may not reach the UI, or None if it may."""
    names = _loopback_names(port)
    if _header(head, b"host") not in names:
        return "421 Misdirected Request"
    origin = _header(head, b"origin")
    if origin is not None and origin not in {f"http://{n}" for n in names}:
        return "403 Forbidden"
    return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


async def start_ui_proxy(port: int, backend: Callable[[], int | None]) -> asyncio.Server:
    """Listen on 127.0.0.1:``port``; ``backend()`` is the UI's private port (it can change when
    the dev server is restarted), or None when there is no UI."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        target = backend()
        problem = refusal(head, port) or (None if target else "503 Service Unavailable")
        if problem is not None:
            body = f"{problem}: this Temporal UI answers only http://127.0.0.1:{port}\n".encode()
            writer.write(
                f"HTTP/1.1 {problem}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port, limit=HEAD_LIMIT)
