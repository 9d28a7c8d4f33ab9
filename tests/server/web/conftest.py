"""The HTTP app served by a real uvicorn on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.app import Mailgate
from tests.support.web import Web, serve_web


@pytest.fixture
async def web(app: Mailgate) -> AsyncIterator[Web]:
    async with serve_web(app) as web:
        yield web
