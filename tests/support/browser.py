"""Debian's chromium for the dashboard's browser tests (playwright never downloads a browser here),
and what those tests do in it: sign in, take a screenshot into test-artifacts/."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

from tests.support.app import ADMIN_TOKEN
from tests.support.web import Web

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HAVE_CHROMIUM = CHROMIUM.exists()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REVIEWER = "Rita Reviewer"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, web: Web) -> None:
    """Sign in, landing on the pending list of this test's own mailbox (the Temporal server is shared)."""
    await page.goto(home(web))
    assert "/signin?next=" in page.url
    await page.fill("input[name=name]", REVIEWER)
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{home(web)}")


def home(web: Web) -> str:
    return f"/?mailbox={web.app.settings.default_mailbox}"
