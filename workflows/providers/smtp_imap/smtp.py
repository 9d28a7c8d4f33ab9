"""Handing one message to an SMTP server with aiosmtplib, every failure classified.

The envelope is spoken command by command (MAIL, one RCPT per approved recipient, DATA) rather
than through ``send_message``, for two reasons: the envelope recipients must be exactly the
approved to/cc/bcc (a server that refuses one recipient fails the whole attempt before DATA, so
nobody gets a partial send), and a connection lost *during DATA* must be told apart from one
lost before it: only then may the server have accepted the message without our knowing.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from workflows.providers.base import PermanentDeliveryError, TemporaryDeliveryError
from workflows.providers.endpoints import Endpoint
from workflows.providers.oauth import OAuthError, OAuthTokens, ReauthNeeded, sasl_initial


class AmbiguousDelivery(TemporaryDeliveryError):
    """The connection was lost after the message went out in DATA: the server may have accepted it."""

    ambiguous = True


@dataclass(frozen=True)
class SmtpServer:
    endpoint: Endpoint
    password: str
    tls: ssl.SSLContext
    timeout: float = 60.0
    oauth: OAuthTokens | None = None


def _refusal(stage: str, exc: aiosmtplib.SMTPResponseException, what: str = "") -> Exception:
    words = f"{exc.code} {exc.message}".strip()
    detail = f"{stage}{' ' + what if what else ''}: the SMTP server answered {words}"
    if 400 <= exc.code < 500:
        return TemporaryDeliveryError(detail)
    return PermanentDeliveryError(detail)


async def _xoauth2_login(client: aiosmtplib.SMTP, endpoint: Endpoint, oauth: OAuthTokens) -> None:
    """AUTH OAUTHBEARER or XOAUTH2; a refused token is renewed once, then the human must log in again."""
    if client.last_ehlo_response is None:  # connect() says EHLO only when it starts TLS
        await client.ehlo()
    for attempt in range(2):
        try:
            token = await oauth.access_token()
        except ReauthNeeded as exc:
            raise TemporaryDeliveryError(str(exc)) from exc
        except OAuthError as exc:
            raise TemporaryDeliveryError(str(exc)) from exc
        # OAUTHBEARER (the standard, RFC 7628) where the server offers it, else XOAUTH2.
        mechanism = "OAUTHBEARER" if "oauthbearer" in client.server_auth_methods else "XOAUTH2"
        initial, dummy = sasl_initial(mechanism, endpoint.username, endpoint.host, endpoint.port, token)
        response = await client.execute_command(b"AUTH", mechanism.encode(), initial.encode())
        if response.code == 334:  # the error details (RFC 7628): end the exchange
            response = await client.execute_command(dummy.encode())
        if response.code == 235:
            return
        oauth.refused(token)
        if attempt == 1:
            raise TemporaryDeliveryError(
                f"login: {endpoint} refused the OAuth token twice ({response.code} {response.message}); "
                f"re-run `mailgate auth login {oauth.client.address}` if the grant was revoked"
            )


async def smtp_send(server: SmtpServer, sender: str, recipients: Sequence[str], raw: bytes) -> str:
    """Deliver once; returns the server's answer to DATA. Raises a DeliveryError on failure."""
    endpoint = server.endpoint
    client = aiosmtplib.SMTP(
        hostname=endpoint.host,
        port=endpoint.port,
        use_tls=endpoint.security == "tls",
        start_tls=endpoint.security == "starttls",
        tls_context=server.tls if endpoint.security != "plain" else None,
        timeout=server.timeout,
    )
    utf8 = not all(address.isascii() for address in [sender, *recipients])
    stage = "connect"
    try:
        await client.connect()
        if server.oauth is not None:
            stage = "login"
            await _xoauth2_login(client, endpoint, server.oauth)
        elif endpoint.username:  # no user: a local relay that takes mail without AUTH
            stage = "login"
            await client.login(endpoint.username, server.password)
        stage = "MAIL FROM"
        options = ["SMTPUTF8"] if utf8 else []
        encoding = "utf-8" if utf8 else "ascii"
        await client.mail(sender, options=options, encoding=encoding)
        for recipient in recipients:
            stage = "RCPT TO"
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                raise _refusal("RCPT TO", exc, f"<{recipient}>") from exc
        stage = "DATA"
        response = await client.data(raw)
    except aiosmtplib.SMTPResponseException as exc:
        raise _refusal(stage, exc) from exc
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ConnectionError, TimeoutError) as exc:
        text = str(exc) or type(exc).__name__
        if stage == "DATA":
            raise AmbiguousDelivery(f"the connection to {endpoint} was lost during DATA ({text})") from exc
        raise TemporaryDeliveryError(f"{stage}: cannot reach the SMTP server {endpoint}: {text}") from exc
    except aiosmtplib.SMTPException as exc:
        # e.g. STARTTLS required but not offered, AUTH not offered: the configuration is wrong.
        raise PermanentDeliveryError(f"{stage}: {endpoint}: {exc}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise TemporaryDeliveryError(f"{stage}: cannot reach the SMTP server {endpoint}: {exc}") from exc
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
    return f"{response.code} {response.message}"
