"""A small typed layer over aioimaplib: one logged-in IMAP session and the few commands mailgate uses.

aioimaplib is the maintained asyncio IMAP client (2.x, 2026); imapclient and imap-tools are
synchronous (a thread per connection) and aioimap is abandoned. aioimaplib returns raw
response lines, so the parsing of FETCH responses lives here. It has no STARTTLS, which is why
IMAP URLs are ``imaps://`` (implicit TLS) or plain ``imap://`` to loopback.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aioimaplib

from workflows.providers.endpoints import Endpoint
from workflows.providers.oauth import sasl_initial

_FETCH = re.compile(rb"^\d+ FETCH \((.*)$", re.DOTALL)
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_ATOM = re.compile(r"^[A-Za-z0-9.\-_/]{1,64}$")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_STATUS_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_LIST = re.compile(rb'^\(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.+)$')
_MONTHS = {
    m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)
}


class ImapError(Exception):
    """The IMAP server refused a command or the connection failed; worth trying again later."""


class ImapLoginRefused(ImapError):
    """The server refused the password or the OAuth token."""


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass
class Fetched:
    uid: int
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None
    literals: list[bytes] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags


def quote(text: str) -> str:
    """An IMAP quoted string. CR and LF cannot be quoted: such input is refused."""
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ValueError("CR, LF and NUL cannot appear in an IMAP string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _internaldate(raw: bytes) -> datetime | None:
    # "30-Nov-2026 15:08:59 +0000"; day may be space-padded.
    text = raw.decode("ascii", "replace").strip()
    try:
        day, month, rest = text.split("-", 2)
        return parsedate_to_datetime(f"{int(day):02d} {month} {rest}") if month in _MONTHS else None
    except (ValueError, TypeError):
        return None


def parse_fetch(lines: list[Any]) -> list[Fetched]:
    """Pair each ``N FETCH (...)`` line with the literals (bodies) that follow it."""
    found: list[Fetched] = []
    current: Fetched | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if current is not None:
                current.literals.append(bytes(line))
            continue
        match = _FETCH.match(line)
        if match is None:
            if current is not None and line != b")":
                # Attributes after a literal, e.g. ``FLAGS (...))`` in some servers' order.
                _attributes(current, line)
            continue
        current = Fetched(uid=0)
        _attributes(current, match.group(1))
        found.append(current)
    return [f for f in found if f.uid]


def _attributes(item: Fetched, text: bytes) -> None:
    if match := _UID.search(text):
        item.uid = int(match.group(1))
    if match := _FLAGS.search(text):
        item.flags = frozenset(match.group(1).decode("ascii", "replace").split())
    if match := _INTERNALDATE.search(text):
        item.internaldate = _internaldate(match.group(1))


class ImapSession:
    """One logged-in connection. Not safe for concurrent commands: callers hold a lock."""

    def __init__(self, client: aioimaplib.IMAP4) -> None:
        self._client = client
        self.selected: str | None = None
        self.lost = False
        # aioimaplib does not fail a command whose connection drops (it waits out its timeout):
        # commands race this event instead.
        self._gone = asyncio.Event()

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        password: str,
        tls: ssl.SSLContext | None,
        timeout: float = 30.0,
        *,
        oauth_token: str | None = None,
    ) -> ImapSession:
        session: ImapSession | None = None
        try:
            if endpoint.security == "tls":
                client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                    host=endpoint.host, port=endpoint.port, timeout=timeout, ssl_context=tls
                )
            else:
                client = aioimaplib.IMAP4(host=endpoint.host, port=endpoint.port, timeout=timeout)
            session = cls(client)
            client.protocol.conn_lost_cb = session._connection_lost
            await client.wait_hello_from_server()
            if oauth_token is not None:
                response = await _oauth_login(client, endpoint, oauth_token, timeout)
            else:
                response = await client.login(endpoint.username, password)
        except (OSError, TimeoutError, ssl.SSLError, aioimaplib.AioImapException) as exc:
            if session is not None:
                await session.close()
            raise ImapError(f"IMAP {endpoint}: cannot connect: {exc or type(exc).__name__}") from exc
        if response.result != "OK":
            await session.close()
            raise ImapLoginRefused(f"IMAP {endpoint}: login as {endpoint.username} refused: {_text(response.lines)}")
        return session

    def _connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._gone.set()

    def has(self, capability: str) -> bool:
        return bool(self._client.has_capability(capability))

    async def _run(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.lost:
            raise ImapError(f"{what}: the connection was lost")
        command = asyncio.ensure_future(call())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({command, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not command.done():
                command.cancel()
                raise ImapError(f"{what}: the server closed the connection")
            response = command.result()
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self.lost = True
            raise ImapError(f"{what}: {exc or type(exc).__name__}") from exc
        finally:
            gone.cancel()
        if response.result != "OK":
            raise ImapError(f"{what}: {response.result} {_text(response.lines)}")
        return response

    async def select(self, folder: str) -> FolderState:
        response = await self._run(f"SELECT {folder}", lambda: self._client.select(quote(folder)))
        self.selected = folder
        joined = b"\n".join(line for line in response.lines if isinstance(line, bytes))
        validity = _UIDVALIDITY.search(joined)
        if validity is None:
            raise ImapError(f"SELECT {folder}: the server sent no UIDVALIDITY")
        uidnext = _UIDNEXT.search(joined)
        exists = next((int(line.split()[0]) for line in response.lines if line.endswith(b" EXISTS")), 0)
        return FolderState(int(validity.group(1)), int(uidnext.group(1)) if uidnext else None, exists)

    async def exists(self, folder: str) -> bool:
        response = await self._client.status(quote(folder), "(UIDVALIDITY)")
        return str(response.result) == "OK" and any(
            _STATUS_UIDVALIDITY.search(line) for line in response.lines if isinstance(line, bytes)
        )

    async def create(self, folder: str) -> None:
        await self._run(f"CREATE {folder}", lambda: self._client.create(quote(folder)))

    async def uids_from(self, first: int) -> list[int]:
        """UIDs of the selected folder from ``first`` on (``N:*`` also names the last message; filtered)."""
        response = await self._run("UID SEARCH", lambda: self._client.uid_search(f"UID {first}:*", charset=None))
        return sorted(u for u in _numbers(response.lines) if u >= first)

    async def search_message_id(self, message_id: str) -> list[int]:
        criteria = f"HEADER Message-ID {quote(message_id)}"
        response = await self._run("UID SEARCH", lambda: self._client.uid_search(criteria, charset=None))
        return _numbers(response.lines)

    async def _listing(self) -> list[tuple[bytes, str]]:
        """(attributes, name) of every selectable folder (LIST "" "*"); names sent as literals are skipped."""
        response = await self._run("LIST", lambda: self._client.list('""', "*"))
        listed = []
        for line in response.lines:
            found = _LIST.match(line) if isinstance(line, bytes) else None
            if found is None or b"\\noselect" in found.group(1).lower():
                continue
            name = found.group(2)
            if name.startswith(b'"') and name.endswith(b'"') and len(name) >= 2:
                name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
            elif name.startswith(b"{"):
                continue
            listed.append((found.group(1).lower(), name.decode("utf-8", "replace")))
        return listed

    async def folders(self) -> list[str]:
        """Every selectable folder (LIST "" "*"); names sent as literals are skipped."""
        return [name for _, name in await self._listing()]

    async def special_use(self, attribute: str) -> str | None:
        """The folder the server marks with this RFC 6154 attribute (``\\Trash``, say), if any.
        Servers with SPECIAL-USE (Gmail, Outlook, Dovecot) return the attributes in a plain LIST."""
        wanted = attribute.lower().encode()
        for attributes, name in await self._listing():
            if wanted in attributes.split():
                return name
        return None

    async def has_uid(self, uid: int) -> bool:
        """Whether the selected folder still holds this UID (another client may have moved it)."""
        response = await self._run("UID SEARCH", lambda: self._client.uid_search(f"UID {uid}", charset=None))
        return uid in _numbers(response.lines)

    async def fetch(self, uids: list[int], parts: str) -> list[Fetched]:
        if not uids:
            return []
        response = await self._run("UID FETCH", lambda: self._client.uid("fetch", ",".join(map(str, uids)), parts))
        return parse_fetch(response.lines)

    async def fetch_flags(self) -> list[Fetched]:
        response = await self._run("UID FETCH", lambda: self._client.uid("fetch", "1:*", "(UID FLAGS)"))
        return parse_fetch(response.lines)

    async def set_seen(self, uid: int, seen: bool) -> None:
        await self._run(
            "UID STORE",
            lambda: self._client.uid("store", str(uid), "+FLAGS.SILENT" if seen else "-FLAGS.SILENT", r"(\Seen)"),
        )

    async def set_keyword(self, uid: int, keyword: str, on: bool) -> None:
        if not _ATOM.match(keyword):
            raise ImapError(f"{keyword!r} cannot be an IMAP keyword (ASCII letters, digits, . - _ / only)")
        await self._run(
            "UID STORE",
            lambda: self._client.uid("store", str(uid), "+FLAGS.SILENT" if on else "-FLAGS.SILENT", f"({keyword})"),
        )

    async def move(self, uid: int, folder: str) -> None:
        """UID MOVE where the server has it (RFC 6851), else COPY, \\Deleted and UID EXPUNGE of
        that one message (UIDPLUS): a move, never a deletion of mail that is not copied."""
        if self.has("MOVE"):
            await self._run(f"UID MOVE {folder}", lambda: self._client.uid("move", str(uid), quote(folder)))
            return
        if not self.has("UIDPLUS"):
            raise ImapError("the server has neither MOVE nor UIDPLUS: mail cannot be moved safely")
        await self._run(f"UID COPY {folder}", lambda: self._client.uid("copy", str(uid), quote(folder)))
        await self.expunge_uid(uid)

    async def expunge_uid(self, uid: int) -> None:
        """Remove exactly one message of the selected folder (UIDPLUS); for a superseded draft only."""
        if not self.has("UIDPLUS"):
            raise ImapError("the server has no UIDPLUS: one message cannot be removed safely")
        await self._run("UID STORE", lambda: self._client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)"))
        await self._run("UID EXPUNGE", lambda: self._client.uid("expunge", str(uid)))

    async def append(self, folder: str, raw: bytes, flags: str, date: datetime) -> None:
        await self._run(
            f"APPEND {folder}", lambda: self._client.append(raw, mailbox=quote(folder), flags=flags, date=date)
        )

    async def idle(self, timeout: float) -> bool:
        """IDLE on the selected folder until the server reports a change (True) or ``timeout`` passes."""
        try:
            idle = await self._client.idle_start(timeout=timeout)
            try:
                pushed = await self._client.wait_server_push(timeout=timeout + 5)
            finally:
                self._client.idle_done()
                await asyncio.wait_for(idle, 10)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            self.lost = True
            raise ImapError(f"IDLE: {exc or type(exc).__name__}") from exc
        return isinstance(pushed, list) and any(b"EXISTS" in line for line in pushed if isinstance(line, bytes))

    async def close(self) -> None:
        try:
            if not self.lost:
                await asyncio.wait_for(self._client.logout(), 5)
        except (OSError, TimeoutError, aioimaplib.AioImapException):
            pass
        transport = getattr(self._client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        self.lost = True


class _SaslCommand(aioimaplib.Command):  # type: ignore[misc]
    """AUTHENTICATE that answers the server's error challenge, so a refusal ends in NO at once
    instead of the server waiting for the client (aioimaplib answers no continuation itself)."""

    def __init__(self, *args: Any, answer: bytes, write: Callable[[bytes], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answer = answer
        self._write = write

    def flush(self) -> None:
        self._write(self._answer + b"\r\n")


async def _oauth_login(client: aioimaplib.IMAP4, endpoint: Endpoint, token: str, timeout: float) -> Any:
    """AUTHENTICATE OAUTHBEARER (RFC 7628) where the server offers it, else XOAUTH2, with SASL-IR."""
    mechanism = "OAUTHBEARER" if client.has_capability("AUTH=OAUTHBEARER") else "XOAUTH2"
    initial, dummy = sasl_initial(mechanism, endpoint.username, endpoint.host, endpoint.port, token)
    protocol = client.protocol
    assert protocol.transport is not None
    command = _SaslCommand(
        "AUTHENTICATE",
        protocol.new_tag(),
        mechanism,
        initial,
        loop=protocol.loop,
        answer=dummy.encode(),
        write=protocol.transport.write,
    )
    response = await asyncio.wait_for(protocol.execute(command, scrub=initial), timeout)
    if response.result == "OK":
        protocol.state = aioimaplib.AUTH
    return response


def _numbers(lines: list[Any]) -> list[int]:
    first = lines[0] if lines and isinstance(lines[0], bytes) else b""
    return [int(part) for part in first.split() if part.isdigit()]


def _text(lines: list[Any]) -> str:
    return " ".join(line.decode("utf-8", "replace") for line in lines if isinstance(line, bytes))[:500]
