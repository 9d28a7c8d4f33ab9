"""One SMTP/IMAP mailbox as mailgate reaches it: its servers and folders, and the one shared IMAP
session (logged in with a password or an OAuth token), opened when needed and dropped on error."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from workflows.models import Frozen
from workflows.providers.base import (
    EmailNotFound,
    EmailProvider,
    InboundHooks,
    NoHooks,
    NoInbox,
)
from workflows.providers.endpoints import Endpoint, tls_context
from workflows.providers.oauth import OAuthError, OAuthTokens, ReauthNeeded
from workflows.providers.smtp_imap.imap import ImapError, ImapLoginRefused, ImapSession
from workflows.providers.smtp_imap.index import ImapIndex

log = logging.getLogger("mailgate.smtp_imap")


class SmtpImapConfig(Frozen):
    """A mailbox's servers and folders; no secret (the password is handed to the provider apart)."""

    address: str
    smtp: Endpoint
    imap: Endpoint | None
    sent_folder: str = "Sent"
    inbox_folder: str = "INBOX"
    drafts_folder: str = "Drafts"
    server_files_sent: bool = False
    sent_check: bool = True
    tls_ca_file: Path | None = None
    # A read is answered from the index; one older than this syncs first (a cheap SELECT when idle).
    fresh_seconds: float = 2.0
    idle_seconds: float = 25 * 60
    reconnect_seconds: float = 5.0


class ImapAccount(EmailProvider):
    """The settings, index and IMAP session every part of SmtpImapProvider works with."""

    name = "smtp_imap"

    def __init__(
        self,
        config: SmtpImapConfig,
        password: str,
        index: ImapIndex,
        hooks: InboundHooks | None = None,
        oauth: OAuthTokens | None = None,
    ) -> None:
        self.config = config
        self._oauth = oauth
        self.index = index
        self.hooks: InboundHooks = hooks or NoHooks()
        self._password = password
        self._tls = tls_context(config.tls_ca_file)
        self._session: ImapSession | None = None
        self._lock = asyncio.Lock()  # one command at a time on the shared session; one sync at a time
        self._synced_at = 0.0
        self._watcher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # never the password
        return f"SmtpImapProvider({self.config.address}, {self.config.smtp}, {self.config.imap})"

    @property
    def has_inbox(self) -> bool:
        return self.config.imap is not None

    def _no_inbox(self) -> NoInbox:
        return NoInbox(f"mailbox {self.config.address} is send-only: it has no inbox (no imap_url is configured)")

    async def _imap(self) -> ImapSession:
        if self.config.imap is None:
            raise self._no_inbox()
        if self._session is None or self._session.lost:
            if self._session is not None:
                await self._session.close()
            self._session = None
            self._session = await self._open()
        return self._session

    async def _open(self) -> ImapSession:
        """Log in with the password, or with an OAuth token (renewed once if the server refuses it)."""
        assert self.config.imap is not None
        if self._oauth is None:
            return await ImapSession.open(self.config.imap, self._password, self._tls)
        for attempt in range(2):
            try:
                token = await self._oauth.access_token()
            except (ReauthNeeded, OAuthError) as exc:
                raise ImapError(str(exc)) from exc
            try:
                return await ImapSession.open(self.config.imap, "", self._tls, oauth_token=token)
            except ImapLoginRefused as exc:
                self._oauth.refused(token)
                if attempt == 1:
                    raise ImapError(f"{exc}; re-run `mailgate auth login {self.config.address}`") from exc
        raise AssertionError("unreachable")

    async def _drop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _own(self, mailbox: str) -> None:
        if mailbox.lower() != self.config.address.lower():
            raise EmailNotFound(f"{mailbox} is not served by this IMAP connection ({self.config.address})")
