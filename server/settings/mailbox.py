"""A ``[[mailboxes]]`` entry of the TOML file: a mailbox and the provider that serves it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.settings.common import SettingsError, address_value, check_env_name, is_https_or_loopback
from workflows.mail.addresses import AddressError, check_header_text, parse_addresses
from workflows.models import EmailAddress, OversightMode
from workflows.providers.endpoints import Endpoint, EndpointError, parse_endpoint
from workflows.providers.oauth import GOOGLE, OAuthClient, OAuthEndpoints, OAuthProvider, microsoft


class MailboxEntry(BaseModel):
    """A ``[[mailboxes]]`` entry of the TOML file: a mailbox and the provider that serves it."""

    model_config = ConfigDict(extra="forbid")

    address: str
    display_name: str = Field(default="", max_length=100, description="the name in the From of sent mail")
    signature: str = Field(
        default="", max_length=2000, description='text appended below a "-- " line to every email sent'
    )
    send_as: list[str] = Field(
        default=[], max_length=50, description="other From addresses the provider accepts (from_alias picks one)"
    )
    provider: Literal["sandbox", "smtp_imap", "multimail"] = "sandbox"
    oversight_mode: OversightMode | None = None
    approvers: list[str] = []
    reviewers: list[str] = []
    allow: list[str] = []
    deny: list[str] = []
    rate_per_hour: int | None = Field(default=None, gt=0)
    rate_per_day: int | None = Field(default=None, gt=0)
    approval_window_hours: float | None = Field(default=None, gt=0)
    intake_workflow: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a workflow type started for every inbound email (id from the mailbox and Message-ID)",
    )
    intake_task_queue: str | None = Field(default=None, min_length=1, max_length=200)
    slack_channel: str | None = Field(
        default=None, pattern=r"^[CGD][A-Z0-9]{2,30}$", description="a Slack channel id (C0123ABC) for approvals"
    )
    client_approval: Literal["off", "link"] = "off"

    # provider = "smtp_imap": any mailbox reachable by SMTP and IMAP.
    smtp_url: str | None = Field(
        default=None, description="smtp+starttls://user@host:587, smtps://, smtp:// (loopback)"
    )
    imap_url: str | None = Field(
        default=None, description="imaps://user@host:993, imap:// (loopback only); none: a send-only mailbox"
    )
    password_env: str | None = Field(default=None, description="the environment variable holding the password")
    sent_folder: str = Field(default="Sent", min_length=1, max_length=200)
    inbox_folder: str = Field(default="INBOX", min_length=1, max_length=200)
    server_files_sent: bool = Field(
        default=False, description="the SMTP server files a Sent copy itself (Gmail, Outlook): mailgate does not"
    )
    sent_check: bool = Field(
        default=True, description="before a resend, look for the Message-ID in the Sent folder and skip if found"
    )
    tls_ca_file: Path | None = Field(default=None, description="a CA certificate file for a private or test server")
    auth: Literal["password", "oauth2"] = Field(
        default="password", description="oauth2: SASL XOAUTH2 with a grant from `mailgate auth login`"
    )
    oauth_provider: OAuthProvider | None = None
    oauth_client_id: str | None = Field(default=None, min_length=1, max_length=500)
    oauth_client_secret_env: str | None = Field(
        default=None, description="the environment variable holding the client secret (none for a public client)"
    )
    oauth_authorize_url: str | None = None
    oauth_token_url: str | None = None
    oauth_device_url: str | None = None
    oauth_revocation_url: str | None = Field(
        default=None, description="RFC 7009 endpoint that `mailgate auth logout` revokes the grant at"
    )
    oauth_scopes: list[str] = Field(default=[], max_length=20)
    oauth_tenant: str = Field(default="common", pattern=r"^[A-Za-z0-9.-]{1,100}$", description="Microsoft's tenant")
    # provider = "multimail": a mailbox at MultiMail, through its SDK.
    api_key_env: str | None = Field(default=None, description="the environment variable holding the API key")
    multimail_mailbox_id: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: str | None = Field(default=None, description="MultiMail's API URL (default https://api.multimail.dev)")
    decision_poll_seconds: float = Field(
        default=300.0, ge=0.1, le=86400, description="how often a send held by MultiMail asks for its decision"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return address_value(value)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str) -> str:
        try:
            return check_header_text(value, "display_name", 100)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("send_as")
    @classmethod
    def _send_as(cls, value: list[str]) -> list[str]:
        try:
            return [str(a) for a in parse_addresses(value, "send_as")]
        except AddressError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("signature contains a NUL character")
        return value.strip("\r\n")

    def aliases(self) -> tuple[EmailAddress, ...]:
        return parse_addresses(self.send_as, "send_as")

    @property
    def has_inbox(self) -> bool:
        return self.provider != "smtp_imap" or self.imap_url is not None

    @model_validator(mode="after")
    def _provider_fields(self) -> MailboxEntry:
        """Each provider's fields present and usable; the message names the mailbox and the field."""
        where = f"mailbox {self.address}"
        own = {"smtp_imap": SMTP_IMAP_FIELDS, "multimail": MULTIMAIL_FIELDS, "sandbox": set()}[self.provider]
        for name in (SMTP_IMAP_FIELDS | MULTIMAIL_FIELDS) - own:
            if name in self.model_fields_set:
                raise ValueError(f"{where}: {name} does not apply to provider {self.provider!r}")
        if self.provider == "smtp_imap" and self.auth == "oauth2":
            self._oauth_fields(where)
        elif self.provider == "smtp_imap":
            for name in OAUTH_FIELDS & self.model_fields_set:
                raise ValueError(f"{where}: {name} applies only with auth = 'oauth2'")
            if not self.smtp_url:
                raise ValueError(f"{where}: smtp_url is required for provider 'smtp_imap'")
            logins = any(endpoint.username for endpoint in self._endpoints(where).values())
            if logins or self.password_env is not None:
                if not self.password_env:
                    raise ValueError(f"{where}: password_env is required for provider 'smtp_imap' with a login")
                check_env_name(where, "password_env", self.password_env)
            if self.tls_ca_file is not None and not self.tls_ca_file.is_file():
                raise ValueError(f"{where}: tls_ca_file: {self.tls_ca_file} is not a file")
        if self.provider == "multimail":
            for name in ("api_key_env", "multimail_mailbox_id"):
                if not getattr(self, name):
                    raise ValueError(f"{where}: {name} is required for provider 'multimail'")
            check_env_name(where, "api_key_env", self.api_key_env)
            if self.base_url is not None and not is_https_or_loopback(self.base_url):
                raise ValueError(f"{where}: base_url: https:// is required (http:// only to a loopback address)")
        return self

    def _endpoints(self, where: str) -> dict[str, Endpoint]:
        """smtp_url and imap_url parsed, those given (no imap_url: a send-only mailbox)."""
        found = {}
        for name, kind in URL_FIELDS:
            url = getattr(self, name)
            if url is not None:
                try:
                    found[name] = parse_endpoint(url, kind)
                except EndpointError as exc:
                    raise ValueError(f"{where}: {name}: {exc}") from exc
        return found

    def _oauth_fields(self, where: str) -> None:
        if not self.smtp_url:
            raise ValueError(f"{where}: smtp_url is required for provider 'smtp_imap'")
        if self.password_env is not None:
            raise ValueError(f"{where}: password_env does not apply with auth = 'oauth2' (the grant replaces it)")
        for name, endpoint in self._endpoints(where).items():
            if not endpoint.username:
                raise ValueError(f"{where}: {name}: XOAUTH2 needs the user in the URL")
        if self.oauth_provider is None or not self.oauth_client_id:
            raise ValueError(f"{where}: auth = 'oauth2' needs oauth_provider and oauth_client_id")
        if self.oauth_provider == "custom" and not (self.oauth_authorize_url and self.oauth_token_url):
            raise ValueError(f"{where}: oauth_provider 'custom' needs oauth_authorize_url and oauth_token_url")
        for name in ("oauth_authorize_url", "oauth_token_url", "oauth_device_url", "oauth_revocation_url"):
            value = getattr(self, name)
            if value is not None and not is_https_or_loopback(value):
                raise ValueError(f"{where}: {name}: https:// is required (http:// only to a loopback address)")
        if self.oauth_client_secret_env is not None:
            check_env_name(where, "oauth_client_secret_env", self.oauth_client_secret_env)

    def oauth_client(self) -> OAuthClient:
        """The OAuth registration: built-in endpoints for Google and Microsoft, overridable."""
        assert self.oauth_client_id is not None
        base = {"google": GOOGLE, "microsoft": microsoft(self.oauth_tenant)}.get(self.oauth_provider or "custom")
        endpoints = OAuthEndpoints(
            authorize_url=self.oauth_authorize_url or (base.authorize_url if base else ""),
            token_url=self.oauth_token_url or (base.token_url if base else ""),
            device_url=self.oauth_device_url or (base.device_url if base else None),
            revocation_url=self.oauth_revocation_url or (base.revocation_url if base else None),
            scopes=tuple(self.oauth_scopes) or (base.scopes if base else ()),
        )
        return OAuthClient(address=self.address, client_id=self.oauth_client_id, endpoints=endpoints)

    def oauth_secret(self) -> str:
        """The client secret from the environment, or "" for a public client."""
        if self.oauth_client_secret_env is None:
            return ""
        value = os.environ.get(self.oauth_client_secret_env)
        if not value:
            raise SettingsError(
                f"mailbox {self.address}: oauth_client_secret_env: "
                f"the environment variable {self.oauth_client_secret_env} is not set"
            )
        return value

    def secret(self) -> str:
        """The password or API key, read from the environment now; SettingsError names what is missing."""
        if self.provider == "smtp_imap" and (self.password_env is None or self.auth == "oauth2"):
            return ""  # a local relay without login, and no inbox
        name = self.password_env if self.provider == "smtp_imap" else self.api_key_env
        field = "password_env" if self.provider == "smtp_imap" else "api_key_env"
        value = os.environ.get(name or "")
        if not value:
            raise SettingsError(f"mailbox {self.address}: {field}: the environment variable {name} is not set")
        return value


URL_FIELDS: tuple[tuple[str, Literal["smtp", "imap"]], ...] = (("smtp_url", "smtp"), ("imap_url", "imap"))
SMTP_IMAP_FIELDS = {
    "smtp_url",
    "imap_url",
    "password_env",
    "sent_folder",
    "inbox_folder",
    "server_files_sent",
    "sent_check",
    "tls_ca_file",
}
OAUTH_FIELDS = {
    "oauth_provider",
    "oauth_client_id",
    "oauth_client_secret_env",
    "oauth_authorize_url",
    "oauth_token_url",
    "oauth_device_url",
    "oauth_revocation_url",
    "oauth_scopes",
    "oauth_tenant",
}
SMTP_IMAP_FIELDS |= OAUTH_FIELDS | {"auth"}
MULTIMAIL_FIELDS = {"api_key_env", "multimail_mailbox_id", "base_url", "decision_poll_seconds"}
