"""The settings every process reads: ``MAILGATE_*`` environment variables over the TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from server.settings.common import (
    MIN_SECRET_CHARS,
    MIN_TOKEN_CHARS,
    SettingsError,
    address_value,
    is_https_or_loopback,
)
from server.settings.mailbox import MailboxEntry
from server.settings.notifications import NotificationSettings
from workflows.models import OversightMode, strictness
from workflows.trust.codec import CodecError, EncryptionCodec, parse_keys
from workflows.trust.standard_webhooks import PREFIX as WHSEC
from workflows.trust.standard_webhooks import decode_secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILGATE_", extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("mailgate")))
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host/db for mailgate's own state (unset: SQLite in the data dir)",
    )
    run_worker: bool = Field(
        default=True,
        description="False (`serve --no-worker`): front doors only, against a cluster whose workers run apart",
    )
    mcp_stateless: bool | None = Field(
        default=None,
        description="streamable HTTP /mcp without sessions, so any front door answers any request behind a "
        "load balancer (unset: on for `serve --no-worker`, off otherwise)",
    )
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
    worker_process: bool = Field(
        default=True, description="serve and mcp run their worker in a process of their own; false: in theirs"
    )
    workflow_cache: int = Field(
        default=100, ge=2, le=100_000, description="workflows a worker keeps in memory; bounds its memory"
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

    @property
    def mcp_stateless_http(self) -> bool:
        """Whether /mcp keeps no handshake-era sessions (the 2026-07-28 protocol never has one)."""
        return not self.run_worker if self.mcp_stateless is None else self.mcp_stateless

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("give a postgresql://user:password@host/db URL")
        return value

    @model_validator(mode="after")
    def _front_doors_need_a_cluster(self) -> Settings:
        if not self.run_worker and self.temporal_address is None:
            raise ValueError(
                "serve --no-worker runs front doors for a cluster whose workers run apart: "
                "set MAILGATE_TEMPORAL_ADDRESS (the embedded Temporal would have no worker)"
            )
        return self

    @field_validator("default_mailbox")
    @classmethod
    def _default_mailbox(cls, value: str) -> str:
        return address_value(value)

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
        if not is_https_or_loopback(value):
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
