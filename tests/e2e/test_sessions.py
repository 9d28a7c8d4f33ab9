"""Dashboard sessions end on the server: a cookie copied before sign-out is refused after it,
across a restart, and rotating the admin token ends every session (issue 13 item 5)."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.support.serve import Serve

pytestmark = pytest.mark.e2e


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def sign_in(stack: Serve, name: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in through the form; returns it and its session cookie."""
    client = httpx.Client(base_url=stack.url, timeout=30)
    page = client.get("/signin")
    response = client.post(
        "/signin", data={"csrf": csrf_of(page.text), "name": name, "token": stack.token("admin"), "next": "/mailboxes"}
    )
    assert response.status_code == 303, response.text
    return client, client.cookies["mailgate_session"]


def with_cookie(stack: Serve, cookie: str) -> httpx.Client:
    """Someone else holding a copy of the cookie (a shared computer, a stolen backup)."""
    return httpx.Client(base_url=stack.url, timeout=30, cookies={"mailgate_session": cookie})


def signed_in(stack: Serve, cookie: str) -> bool:
    with with_cookie(stack, cookie) as client:
        response = client.get("/mailboxes")
        return response.status_code == 200 and "Signed in as" in response.text


def test_a_cookie_from_before_sign_out_is_refused_after_it_and_after_a_restart(serve: Serve) -> None:
    serve.start()
    alice, alice_cookie = sign_in(serve, "Alice")
    bob, bob_cookie = sign_in(serve, "Bob")
    try:
        assert signed_in(serve, alice_cookie)
        mailboxes = alice.get("/mailboxes")
        signout = alice.post("/signout", data={"csrf": csrf_of(mailboxes.text)})
        assert signout.status_code == 303
        assert signout.headers["location"] == "/signin"

        assert not signed_in(serve, alice_cookie)
        with with_cookie(serve, alice_cookie) as thief:
            # A form posted with the copied cookie and its CSRF token changes nothing.
            refused = thief.post(
                "/mailboxes/agent@mailgate.local/mode",
                data={"csrf": csrf_of(mailboxes.text), "mode": "autonomous", "confirmed": "yes"},
            )
            assert refused.status_code == 401
        # Only Alice's session ended.
        assert signed_in(serve, bob_cookie)
    finally:
        alice.close()
        bob.close()

    assert serve.stop() == 0
    serve.start()
    assert not signed_in(serve, alice_cookie)
    assert signed_in(serve, bob_cookie)
    listing = serve.cli("mailbox", "list", "--json")
    assert '"gated_send"' in listing.stdout, listing.stderr

    # A new admin token ends every session signed in with the old one.
    assert serve.stop() == 0
    (serve.data_dir / "admin.token").write_text(secrets.token_urlsafe(32) + "\n")
    serve.start()
    assert not signed_in(serve, bob_cookie)
    carol, carol_cookie = sign_in(serve, "Carol")
    carol.close()
    assert signed_in(serve, carol_cookie)
