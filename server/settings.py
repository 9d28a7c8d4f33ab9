"""Settings from ``MAILGATE_*`` environment variables and an optional TOML file (``MAILGATE_CONFIG``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workflows.mail.addresses import AddressError, check_header_text, parse_addr_spec, parse_addresses
from workflows.models import EmailAddress, OversightMode, strictness
from workflows.providers.endpoints import EndpointError, is_loopback, parse_endpoint
from workflows.providers.oauth import GOOGLE, OAuthClient, OAuthEndpoints, OAuthProvider, microsoft
from workflows.trust.codec import CodecError, EncryptionCodec, parse_keys
from workflows.trust.standard_webhooks import PREFIX as WHSEC
from workflows.trust.standard_webhooks import decode_secret


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the field."""


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
        try:
            return parse_addr_spec(value)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc

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
            logins = False
            for name, kind in (("smtp_url", "smtp"), ("imap_url", "imap")):
                if getattr(self, name) is None:
                    continue  # no imap_url: a send-only mailbox
                try:
                    logins |= bool(parse_endpoint(getattr(self, name), kind).username)  # type: ignore[arg-type]
                except EndpointError as exc:
                    raise ValueError(f"{where}: {name}: {exc}") from exc
            if logins or self.password_env is not None:
                if not self.password_env:
                    raise ValueError(f"{where}: password_env is required for provider 'smtp_imap' with a login")
                _check_env_name(where, "password_env", self.password_env)
            if self.tls_ca_file is not None and not self.tls_ca_file.is_file():
                raise ValueError(f"{where}: tls_ca_file: {self.tls_ca_file} is not a file")
        if self.provider == "multimail":
            for name in ("api_key_env", "multimail_mailbox_id"):
                if not getattr(self, name):
                    raise ValueError(f"{where}: {name} is required for provider 'multimail'")
            _check_env_name(where, "api_key_env", self.api_key_env)
            if self.base_url is not None:
                url = urlsplit(self.base_url)
                if url.scheme != "https" and not (url.scheme == "http" and is_loopback(url.hostname or "")):
                    raise ValueError(f"{where}: base_url: https:// is required (http:// only to a loopback address)")
        return self

    def _oauth_fields(self, where: str) -> None:
        if not self.smtp_url:
            raise ValueError(f"{where}: smtp_url is required for provider 'smtp_imap'")
        if self.password_env is not None:
            raise ValueError(f"{where}: password_env does not apply with auth = 'oauth2' (the grant replaces it)")
        for name, kind in (("smtp_url", "smtp"), ("imap_url", "imap")):
            if getattr(self, name) is None:
                continue
            try:
                endpoint = parse_endpoint(getattr(self, name), kind)  # type: ignore[arg-type]
            except EndpointError as exc:
                raise ValueError(f"{where}: {name}: {exc}") from exc
            if not endpoint.username:
                raise ValueError(f"{where}: {name}: XOAUTH2 needs the user in the URL")
        if self.oauth_provider is None or not self.oauth_client_id:
            raise ValueError(f"{where}: auth = 'oauth2' needs oauth_provider and oauth_client_id")
        if self.oauth_provider == "custom" and not (self.oauth_authorize_url and self.oauth_token_url):
            raise ValueError(f"{where}: oauth_provider 'custom' needs oauth_authorize_url and oauth_token_url")
        for name in ("oauth_authorize_url", "oauth_token_url", "oauth_device_url"):
            value = getattr(self, name)
            if value is not None:
                url = urlsplit(value)
                if url.scheme != "https" and not (url.scheme == "http" and is_loopback(url.hostname or "")):
                    raise ValueError(f"{where}: {name}: https:// is required (http:// only to a loopback address)")
        if self.oauth_client_secret_env is not None:
            _check_env_name(where, "oauth_client_secret_env", self.oauth_client_secret_env)

    def oauth_client(self) -> OAuthClient:
        """The OAuth registration: built-in endpoints for Google and Microsoft, overridable."""
        assert self.oauth_client_id is not None
        base = {"google": GOOGLE, "microsoft": microsoft(self.oauth_tenant)}.get(self.oauth_provider or "custom")
        endpoints = OAuthEndpoints(
            authorize_url=self.oauth_authorize_url or (base.authorize_url if base else ""),
            token_url=self.oauth_token_url or (base.token_url if base else ""),
            device_url=self.oauth_device_url or (base.device_url if base else None),
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
    "oauth_scopes",
    "oauth_tenant",
}
SMTP_IMAP_FIELDS |= OAUTH_FIELDS | {"auth"}
MULTIMAIL_FIELDS = {"api_key_env", "multimail_mailbox_id", "base_url", "decision_poll_seconds"}
MIN_TOKEN_CHARS = 32
MIN_SECRET_CHARS = 16
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


def _check_env_name(where: str, field: str, value: str | None) -> None:
    if value is None or not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{where}: {field}: {value!r} is not an environment variable name (the secret itself?)")


class NotificationSettings(BaseModel):
    """The ``[notifications]`` table: the humans' own email channel, apart from every agent mailbox.

    ``smtp_url`` (with ``password_env`` and ``from_address``) sends notices through an SMTP account
    no agent reads; ``sandbox = true`` keeps them in the embedded sandbox (local use). Without a
    channel, notices to approvers of a non-sandbox mailbox go through that mailbox and carry no
    link and no code (the dashboard has them).
    """

    model_config = ConfigDict(extra="forbid")

    sandbox: bool = False
    smtp_url: str | None = Field(
        default=None, description="smtp+starttls://user@host:587, smtps://, smtp:// (loopback)"
    )
    password_env: str | None = Field(default=None, description="the environment variable holding the SMTP password")
    tls_ca_file: Path | None = Field(default=None, description="a CA certificate file for a private or test server")
    from_address: str = Field(default="mailgate@mailgate.local", description="the From of every notice")
    from_name: str = Field(default="mailgate approvals", max_length=100)

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        try:
            return parse_addr_spec(value)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _channel(self) -> NotificationSettings:
        where = "notifications"
        if self.sandbox and self.smtp_url:
            raise ValueError(f"{where}: choose smtp_url or sandbox = true, not both")
        if self.smtp_url is None:
            for name in ("password_env", "tls_ca_file"):
                if name in self.model_fields_set:
                    raise ValueError(f"{where}: {name} applies only with smtp_url")
            return self
        try:
            parse_endpoint(self.smtp_url, "smtp")
        except EndpointError as exc:
            raise ValueError(f"{where}: smtp_url: {exc}") from exc
        _check_env_name(where, "password_env", self.password_env)
        if "from_address" not in self.model_fields_set:
            raise ValueError(f"{where}: from_address is required with smtp_url (the account's own address)")
        if self.tls_ca_file is not None and not self.tls_ca_file.is_file():
            raise ValueError(f"{where}: tls_ca_file: {self.tls_ca_file} is not a file")
        return self

    def password(self) -> str:
        """The SMTP password, read from the environment now; SettingsError names what is missing."""
        value = os.environ.get(self.password_env or "")
        if not value:
            raise SettingsError(f"notifications: password_env: the environment variable {self.password_env} is not set")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILGATE_", extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("mailgate")))
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    smtp_port: int = Field(default=2525, ge=0, le=65535, description="0 disables the sandbox SMTP listener")
    public_url: str | None = Field(default=None, description="URL users reach the HTTP app at, for links")
    url: str | None = Field(
        default=None, description="a mailgate running elsewhere, for `mailgate mcp` (with MAILGATE_AGENT_TOKEN)"
    )

    temporal_address: str | None = None
    temporal_namespace: str = Field(default="default", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    temporal_ui_url: str | None = Field(default=None, description="the Temporal UI, for links and the codec endpoint")
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int | None = Field(default=None, ge=1, le=65535)
    temporal_ui_enabled: bool = Field(
        default=False, description="start the embedded Temporal UI (mailgate serve --temporal-ui); off by default"
    )
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    temporal_sqlite_synchronous: Literal["off", "normal", "full"] = "normal"
    workflow_cache: int = Field(
        default=300, ge=2, le=100_000, description="workflows a worker keeps in memory; bounds its memory"
    )
    encryption_keys: SecretStr | None = Field(
        default=None, description="KEY_ID:BASE64KEY[,...]: encrypt payloads in Temporal; the first key encrypts"
    )
    task_queue: str = Field(default="mailgate", pattern=r"^[A-Za-z0-9._-]{1,100}$")

    agent_token: SecretStr | None = None
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None

    multimail_webhook_secret: SecretStr | None = None
    approval_webhook_secret: SecretStr | None = None
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_email: bool = True
    notifications: NotificationSettings | None = None
    link_ttl_hours: float = Field(default=72.0, gt=0, le=24 * 30)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api"
    oidc_issuer: str | None = Field(default=None, description="OpenID Connect issuer for dashboard single sign-on")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = Field(default=None, description="unset: a public client (PKCE only)")
    mcp_oauth_issuer: str | None = Field(
        default=None, description="authorization server whose JWT access tokens /mcp accepts beside agent tokens"
    )
    mcp_oauth_resource: str | None = Field(
        default=None, description="this server's /mcp URL, the tokens' audience (default: MAILGATE_PUBLIC_URL/mcp)"
    )
    mcp_oauth_agent_claim: str = Field(
        default="sub", pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="the token claim that names the agent"
    )

    default_mailbox: str = "agent@mailgate.local"
    default_mode: OversightMode = "gated_send"
    mode_floor: OversightMode = Field(
        default="gated_send", description="the loosest mode an agent-created mailbox may start in"
    )
    approval_timeout_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    max_pending_per_mailbox: int = Field(
        default=200, ge=1, le=100_000, description="sends one mailbox may have waiting for approval at once"
    )
    inbound_poll_seconds: float = Field(
        default=60.0, ge=1, le=86400, description="how often mailbox watchers look for new mail unpoked"
    )
    trash_approval_over: int = Field(
        default=10, ge=0, le=100, description="in gated modes, a manage_email trash of more ids than this needs a human"
    )
    mailboxes: list[MailboxEntry] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line, with the send id where there is one"
    )
    metrics_address: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$",
        description="host:port where the process exports Prometheus metrics itself (unset: a loopback port "
        "that only serve's /metrics reads); a `mailgate worker` needs it to be scraped",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token /metrics requires; unset: /metrics answers loopback clients only"
    )

    @field_validator("default_mailbox")
    @classmethod
    def _default_mailbox(cls, value: str) -> str:
        try:
            return parse_addr_spec(value)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("agent_token", "admin_token", "secret_key")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        # A token someone sets by hand must be as hard to guess as the 43-character ones
        # mailgate generates; an empty variable must not silently mean "no secret".
        if value is not None and len(value.get_secret_value().strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"set to {len(value.get_secret_value().strip())} characters; at least {MIN_TOKEN_CHARS} are "
                "required (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), or unset it "
                "to have one generated into the data dir"
            )
        return value

    @field_validator("multimail_webhook_secret", "temporal_api_key")
    @classmethod
    def _not_short(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but empty would turn an endpoint on with an empty HMAC key anyone can sign with.
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"set to {len(value.get_secret_value().strip())} characters; a secret needs at least "
                f"{MIN_SECRET_CHARS} (unset the variable to turn what it enables off)"
            )
        return value

    @field_validator("approval_webhook_secret", "notify_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_secret(value.get_secret_value())
            if not value.get_secret_value().startswith(WHSEC):
                raise ValueError("a Standard Webhooks secret starts with 'whsec_' (then base64)")
        return value

    @field_validator(
        "notify_webhook_url",
        "temporal_ui_url",
        "public_url",
        "url",
        "mcp_oauth_resource",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("an http:// or https:// URL is required")
        return value.rstrip("/") if value else value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme != "https" and not (url.scheme == "http" and is_loopback(url.hostname or "")):
            raise ValueError("https:// is required (http:// only to a loopback address)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _slack_complete(self) -> Settings:
        if (self.slack_bot_token is None) != (self.slack_signing_secret is None):
            raise ValueError("MAILGATE_SLACK_BOT_TOKEN and MAILGATE_SLACK_SIGNING_SECRET go together: set both")
        return self

    @field_validator("oidc_issuer", "mcp_oauth_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        # Kept exactly as given: an issuer is compared byte for byte with its tokens' `iss`.
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("an http:// or https:// URL is required")
        return value

    @model_validator(mode="after")
    def _mcp_resource_known(self) -> Settings:
        # The URL agents reach /mcp at is the tokens' audience; a wildcard address is none.
        wildcard = self.host in ("0.0.0.0", "::")  # noqa: S104
        if self.mcp_oauth_issuer and wildcard and not (self.mcp_oauth_resource or self.public_url):
            raise ValueError(
                "MAILGATE_MCP_OAUTH_ISSUER with a wildcard host needs MAILGATE_PUBLIC_URL or "
                "MAILGATE_MCP_OAUTH_RESOURCE: the URL agents reach /mcp at is the access tokens' audience"
            )
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ValueError("MAILGATE_OIDC_ISSUER and MAILGATE_OIDC_CLIENT_ID go together: set both")
        return self

    @model_validator(mode="after")
    def _notify_webhook_signed(self) -> Settings:
        if self.notify_webhook_url and self.notify_webhook_secret is None:
            raise ValueError("MAILGATE_NOTIFY_WEBHOOK_URL needs MAILGATE_NOTIFY_WEBHOOK_SECRET (whsec_ + base64)")
        return self

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Settings:
        if (
            self.agent_token is not None
            and self.admin_token is not None
            and self.agent_token.get_secret_value() == self.admin_token.get_secret_value()
        ):
            raise ValueError("MAILGATE_AGENT_TOKEN and MAILGATE_ADMIN_TOKEN must differ: one token, one role")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("MAILGATE_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @field_validator("encryption_keys")
    @classmethod
    def _keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_keys(value.get_secret_value())
            except CodecError as exc:
                raise ValueError(str(exc)) from exc
        return value

    def codec(self) -> EncryptionCodec | None:
        if self.encryption_keys is None:
            return None
        return EncryptionCodec(parse_keys(self.encryption_keys.get_secret_value()))

    @property
    def embedded(self) -> bool:
        return self.temporal_address is None

    @property
    def new_mailbox_mode(self) -> OversightMode:
        """The mode an agent-created mailbox starts in: the default, never looser than the floor."""
        return min(self.default_mode, self.mode_floor, key=strictness)

    @property
    def temporal_ui(self) -> str | None:
        """The Temporal UI's URL: configured, or the embedded dev server's."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        if self.embedded and self.temporal_ui_enabled:
            return f"http://127.0.0.1:{self.embedded_ui_port}"
        return None

    @property
    def embedded_ui_port(self) -> int:
        return self.temporal_ui_port or self.temporal_port + 1000

    @property
    def http_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI flags on top; a bad value raises SettingsError naming the field."""
    config = os.environ.get("MAILGATE_CONFIG")
    if config and not Path(config).is_file():
        raise SettingsError(f"MAILGATE_CONFIG points to {config}, which is not a file")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            name = f"MAILGATE_{loc.upper()}" if loc and "." not in loc else loc or "settings"
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from exc
