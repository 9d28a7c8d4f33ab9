"""The HTTP app served by a real uvicorn on a free port; one chromium and a page per test for the browser tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright

from server.app import Mailgate
from tests.support.browser import CHROMIUM, FLAGS, HAVE_CHROMIUM
from tests.support.peers.oidc_server import OIDCPeer
from tests.support.web import Web, serve_web


@pytest.fixture
async def web(app: Mailgate) -> AsyncIterator[Web]:
    async with serve_web(app) as web:
        yield web


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One chromium for the session's browser tests."""
    if not HAVE_CHROMIUM:
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (this suite never downloads a browser)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, web: Web) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    dialogs: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    await context.close()


@pytest.fixture
def idp() -> Iterator[OIDCPeer]:
    """An OpenID provider of its own for the sign-in tests."""
    peer = OIDCPeer().start()
    yield peer
    peer.stop()
