"""The socket `serve` binds for HTTP before anything starts (server/stack.py) must give its
connections TCP_NODELAY, as a socket uvicorn binds itself would: without it, an answer written
as headers then body waits for the client's delayed ACK (~40 ms per MCP call, issue 20)."""

from __future__ import annotations

import asyncio
import socket

from server.stack import bind_port


async def test_connections_accepted_on_the_bound_http_port_send_without_delay() -> None:
    sock = bind_port("127.0.0.1", 0, "HTTP", "")
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    # uvicorn serves serve's socket the same way: loop.create_server(sock=...).
    server = await asyncio.start_server(on_connect, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
