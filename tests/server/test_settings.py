"""Settings and secrets: clear errors that name the field, tokens generated once with 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.credentials import load_secrets
from server.settings import Settings, SettingsError, load_settings


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILGATE_PORT", "eighty")
    with pytest.raises(SettingsError, match="MAILGATE_PORT"):
        load_settings(data_dir=tmp_path)
    monkeypatch.delenv("MAILGATE_PORT")
    monkeypatch.setenv("MAILGATE_DEFAULT_MODE", "lenient")
    with pytest.raises(SettingsError, match="MAILGATE_DEFAULT_MODE"):
        load_settings(data_dir=tmp_path)


def test_toml_file_and_its_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text('port = 9000\n[[mailboxes]]\naddress = "ops@example.com"\noversight_mode = "monitored"\n')
    monkeypatch.setenv("MAILGATE_CONFIG", str(config))
    settings = load_settings(data_dir=tmp_path)
    assert settings.port == 9000
    assert settings.mailboxes[0].address == "ops@example.com"
    config.write_text('[[mailboxes]]\naddress = "not an address"\n')
    with pytest.raises(SettingsError, match=r"mailboxes\.0\.address"):
        load_settings(data_dir=tmp_path)
    monkeypatch.setenv("MAILGATE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match="not a file"):
        load_settings(data_dir=tmp_path)


def test_the_same_token_for_both_roles_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="must differ"):
        load_settings(data_dir=tmp_path, agent_token="same-token-" * 4, admin_token="same-token-" * 4)


def test_generated_tokens_are_private_stable_and_distinct(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_secrets(settings)
    again = load_secrets(settings)
    assert (first.agent_token, first.admin_token) == (again.agent_token, again.admin_token)
    assert first.agent_token != first.admin_token
    for name in ("agent.token", "admin.token", "secret.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert first.role_of(first.agent_token) == "agent"
    assert first.role_of(first.admin_token) == "admin"
    assert first.role_of("guess") is None


def test_configured_tokens_win_and_are_not_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, agent_token=SecretStr("a" * 32), admin_token=SecretStr("b" * 32))
    secrets = load_secrets(settings)
    assert secrets.agent_token == "a" * 32
    assert secrets.agent_token_file is None
    assert not (tmp_path / "agent.token").exists()


def test_agent_created_mailboxes_never_start_looser_than_the_floor() -> None:
    assert Settings(default_mode="autonomous", mode_floor="gated_send").new_mailbox_mode == "gated_send"
    assert Settings(default_mode="gated_all", mode_floor="monitored").new_mailbox_mode == "gated_all"


def test_the_notifications_table_and_its_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "mailgate.toml"
    monkeypatch.setenv("MAILGATE_CONFIG", str(config))
    config.write_text(
        '[notifications]\nsmtp_url = "smtp+starttls://notices%40example.com@smtp.example.com:587"\n'
        'password_env = "NOTICES_PASSWORD"\nfrom_address = "notices@example.com"\n'
    )
    table = load_settings(data_dir=tmp_path).notifications
    assert table is not None and table.from_address == "notices@example.com"
    with pytest.raises(SettingsError, match="NOTICES_PASSWORD is not set"):
        table.password()
    config.write_text("[notifications]\nsandbox = true\n")
    assert load_settings(data_dir=tmp_path).notifications.sandbox  # type: ignore[union-attr]
    for bad, named in (
        ('smtp_url = "smtp://notices@mail.example.com"\npassword_env = "P"\nfrom_address = "a@b.example"', "clear"),
        ('smtp_url = "smtps://n@mail.example.com"\npassword_env = "P"', "from_address is required"),
        ('smtp_url = "smtps://n@mail.example.com"\npassword_env = "hunter2!"\nfrom_address = "a@b.example"', "env"),
        ('sandbox = true\nsmtp_url = "smtps://n@mail.example.com"', "not both"),
        ('password_env = "P"', "applies only with smtp_url"),
        ('from_address = "nobody"', "from_address"),
        ("channel = 1", "notifications.channel"),
    ):
        config.write_text(f"[notifications]\n{bad}\n")
        with pytest.raises(SettingsError, match=named):
            load_settings(data_dir=tmp_path)


def test_operator_set_tokens_need_32_characters_and_the_error_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^invalid settings: MAILGATE_ADMIN_TOKEN: set to 31 characters"):
        load_settings(data_dir=tmp_path, admin_token="b" * 31)
    with pytest.raises(SettingsError, match="MAILGATE_MULTIMAIL_WEBHOOK_SECRET: set to 0 characters"):
        load_settings(data_dir=tmp_path, multimail_webhook_secret="")
    load_settings(data_dir=tmp_path, admin_token="b" * 32, multimail_webhook_secret="m" * 16)


def test_single_sign_on_and_mcp_oauth_settings(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MAILGATE_OIDC_CLIENT_ID"):
        load_settings(data_dir=tmp_path, oidc_issuer="https://id.example.com")
    with pytest.raises(SettingsError, match=r"oidc_issuer|MAILGATE_OIDC_ISSUER"):
        load_settings(data_dir=tmp_path, oidc_issuer="id.example.com", oidc_client_id="mailgate")
    # An issuer is kept byte for byte: its tokens' `iss` must match it exactly.
    sso = load_settings(data_dir=tmp_path, oidc_issuer="https://id.example.com/", oidc_client_id="mailgate")
    assert sso.oidc_issuer == "https://id.example.com/"
    with pytest.raises(SettingsError, match="MAILGATE_PUBLIC_URL or MAILGATE_MCP_OAUTH_RESOURCE"):
        load_settings(data_dir=tmp_path, host="0.0.0.0", mcp_oauth_issuer="https://id.example.com")  # noqa: S104
    remote = load_settings(
        data_dir=tmp_path,
        host="0.0.0.0",  # noqa: S104
        public_url="https://mail.example.com",
        mcp_oauth_issuer="https://id.example.com",
    )
    assert remote.mcp_oauth_issuer == "https://id.example.com"
