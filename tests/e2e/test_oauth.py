"""OAuth 2.0 mailboxes end to end, all real peers: an authlib authorization server (code + PKCE,
refresh, revocation, device flow, introspection), aiosmtpd taking only AUTH XOAUTH2 and checking
each token by introspection, `mailgate auth login|status|logout` (which revokes the grant) and
`mailgate serve`."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.peers.dovecot import Dovecot, start_dovecot
from tests.support.peers.fixtures import imap_append, need_dovecot
from tests.support.peers.oauth_server import RS_SECRET, OAuthPeer
from tests.support.peers.smtp_sink import SmtpPeer
from tests.support.serve import Serve
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
BOX = "alice@example.test"


def config(path: Path, oauth: OAuthPeer, smtp: SmtpPeer, imap: Dovecot) -> Path:
    path.write_text(
        f"""
[[mailboxes]]
address = "{BOX}"
provider = "smtp_imap"
smtp_url = "smtp://alice%40example.test@127.0.0.1:{smtp.port}"
imap_url = "imaps://alice%40example.test@127.0.0.1:{imap.tls_port}"
tls_ca_file = "{imap.ca_file}"
auth = "oauth2"
oauth_provider = "custom"
oauth_client_id = "{oauth.client_id}"
oauth_authorize_url = "{oauth.url}/authorize"
oauth_token_url = "{oauth.url}/token"
oauth_device_url = "{oauth.url}/device_authorization"
oauth_revocation_url = "{oauth.url}/revoke"
oauth_scopes = ["mail"]
oversight_mode = "gated_send"
"""
    )
    return path


def login(serve: Serve, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", "auth", "login", BOX, *extra],
        env=serve.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"https?://\S+", line)
        if found:
            return found.group(0)
    raise AssertionError("the login printed no URL")


def login_in_browser(serve: Serve) -> None:
    """`auth login --no-browser`; the test plays the human's browser with the printed URL."""
    process = login(serve, "--no-browser")
    url = first_url(process)
    # The server consents and redirects to mailgate's loopback listener, which takes the code.
    page = httpx.get(url, follow_redirects=True, timeout=30)
    assert page.status_code == 200 and "connected" in page.text, page.text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "is connected" in out


def status(serve: Serve) -> dict[str, object]:
    shown = serve.cli("auth", "status", BOX, "--json")
    assert shown.returncode == 0, shown.stderr
    found: dict[str, object] = json.loads(shown.stdout)
    return found


async def send(client: object, http: httpx.AsyncClient, subject: str) -> str:
    sent = await client.call_tool(  # type: ignore[attr-defined]
        "durable_send", {"mailbox": BOX, "to": ["carol@example.org"], "subject": subject, "body": "hello"}
    )
    assert sent.structured_content is not None, sent.content
    send_id: str = sent.structured_content["send_id"]
    approved = await http.post(f"/api/approvals/{send_id}/approve", json={"approver": "bob"})
    assert approved.status_code == 200, approved.text
    return send_id


async def test_oauth_login_send_read_refresh_revoke_and_device_login(serve: Serve, tmp_path: Path) -> None:
    need_dovecot()
    oauth = OAuthPeer(BOX).start()
    smtp = SmtpPeer(tmp_path / "smtp", security="plain", oauth_introspect=(f"{oauth.url}/introspect", RS_SECRET))
    smtp.start()
    # Dovecot checks XOAUTH2 tokens at the same server; its password is only for the test's own MTA role.
    introspect = f"http://rs:{RS_SECRET}@127.0.0.1:{oauth.port}/introspect"
    imap = start_dovecot(tmp_path / "imap", {BOX: "mta-only"}, oauth_introspection=introspect)
    try:
        serve.extra_env.update(
            MAILGATE_CONFIG=str(config(tmp_path / "mailgate.toml", oauth, smtp, imap)),
            MAILGATE_INBOUND_POLL_SECONDS="2",
        )
        assert status(serve)["connected"] is False
        await asyncio.to_thread(login_in_browser, serve)
        assert status(serve)["connected"] is True
        [grant] = (serve.data_dir / "oauth").iterdir()
        assert stat.S_IMODE(grant.stat().st_mode) == 0o600
        [token] = list(oauth.tokens())
        assert token.refresh_token.encode() not in grant.read_bytes()  # encrypted at rest

        await asyncio.to_thread(serve.start)
        admin = {"Authorization": f"Bearer {serve.token('admin')}"}
        async with serve.mcp() as client, httpx.AsyncClient(base_url=serve.url, headers=admin, timeout=30) as http:
            # A gated send, delivered over XOAUTH2 with a token the SMTP server checked.
            first = await send(client, http, "first")
            try:
                await eventually(lambda: len(smtp.sink.received) == 1)
            except AssertionError:
                raise AssertionError(serve.cli("sends", "show", first).stdout + serve.log()) from None
            assert smtp.sink.received[0].authenticated

            # Inbound mail read over IMAP, logged in with OAUTHBEARER, which Dovecot offers beside
            # XOAUTH2 (the Sent copy went the same way); this SMTP server offers only XOAUTH2.
            raw = (
                f"From: Carol <carol@example.org>\r\nTo: {BOX}\r\nSubject: Re: first\r\n"
                "Message-ID: <carol-1@example.org>\r\n\r\nThanks!\r\n"
            ).encode()
            await asyncio.to_thread(imap_append, imap, "INBOX", raw, BOX)

            async def inbox() -> list[dict[str, object]]:
                listed = await client.call_tool("check_inbox", {"mailbox": BOX})
                assert listed.structured_content is not None, listed.content
                emails: list[dict[str, object]] = listed.structured_content["emails"]
                return emails

            for _ in range(50):
                if await inbox():
                    break
                await asyncio.sleep(0.2)
            [email] = await inbox()
            read = await client.call_tool("read_email", {"mailbox": BOX, "email_id": email["email_id"]})
            assert "Thanks!" in str(read.content)
            assert "method=OAUTHBEARER" in imap.log() and "method=PLAIN, rip" in imap.log()  # PLAIN: the test's append

            # The access token expires early at the server: the refused login renews it, once.
            oauth.expire_access_tokens()
            await send(client, http, "second")
            await eventually(lambda: len(smtp.sink.received) == 2)
            assert len(list(oauth.tokens())) >= 2  # renewed

            # The user revokes the grant: the send waits, saying what to do.
            oauth.revoke_all()
            oauth.expire_access_tokens()
            waiting = await send(client, http, "third")

            async def says_relogin() -> bool:
                shown = await http.get(f"/api/sends/{waiting}")  # what `mailgate sends show --json` prints
                state = shown.json() if shown.status_code == 200 else {}
                return state.get("status") == "sending" and "mailgate auth login" in (state.get("last_error") or "")

            await eventually(says_relogin, timeout=60)
            revoked = status(serve)
            assert revoked["connected"] is False and "mailgate auth login" in str(revoked["state"])
            assert len(smtp.sink.received) == 2

            # Logged in again, with the device flow this time: the waiting send goes out.
            process = login(serve, "--device")
            assert process.stderr is not None
            line = process.stderr.readline()
            code = re.search(r"enter the code (\S+)", line)
            assert code is not None, line
            oauth.approve_device(code.group(1))
            _, err = await asyncio.to_thread(process.communicate, timeout=60)
            assert process.returncode == 0, err
            await eventually(lambda: len(smtp.sink.received) == 3, timeout=120)
            assert status(serve)["connected"] is True

        assert not all(t.revoked for t in oauth.tokens())
        logout = serve.cli("auth", "logout", BOX)
        assert logout.returncode == 0 and "revoked at" in logout.stdout, logout.stderr
        assert all(t.revoked for t in oauth.tokens())  # RFC 7009: revoked at the server too
        assert status(serve)["connected"] is False
        assert serve.stop() == 0
        log = serve.log()
        for token in oauth.tokens():
            assert token.access_token not in log and token.refresh_token not in log
    finally:
        imap.stop(graceful=False)
        smtp.stop()
        oauth.stop()
