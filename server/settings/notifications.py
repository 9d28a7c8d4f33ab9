"""The ``[notifications]`` table: the humans' own channel for approval links and upgrade codes."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.settings.common import SettingsError, address_value, check_env_name
from workflows.providers.endpoints import EndpointError, parse_endpoint


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
        return address_value(value)

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
        check_env_name(where, "password_env", self.password_env)
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
