"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of its own: how the hosted-service fakes run."""

from __future__ import annotations

import threading
import time
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import free_port


class AppThread:
    """Started by `start()`, for as long as a test needs it; `stop()` ends it."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
