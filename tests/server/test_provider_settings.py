"""Provider entries in the TOML file: each bad entry stops start-up naming the mailbox and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.providers import build_providers
from server.settings import SettingsError, load_settings
from workflows.providers.base import UnavailableProvider
from workflows.providers.multimail.provider import MultiMailProvider
from workflows.providers.sandbox.store import SandboxStore
from workflows.providers.smtp_imap.provider import SmtpImapProvider

GOOD_IMAP = """
[[mailboxes]]
address = "agent@example.com"
provider = "smtp_imap"
smtp_url = "smtp+starttls://agent%40example.com@smtp.example.com:587"
imap_url = "imaps://agent%40example.com@imap.example.com"
password_env = "AGENT_MAIL_PASSWORD"
sent_folder = "[Gmail]/Sent Mail"
server_files_sent = true
"""
GOOD_MULTIMAIL = """
[[mailboxes]]
address = "bot@multimail.example"
provider = "multimail"
api_key_env = "MULTIMAIL_API_KEY"
multimail_mailbox_id = "01JMXK9F2A3B4C5D6E7F8G9H0J"
"""


def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "mailgate.toml"
    config.write_text(text)
    monkeypatch.setenv("MAILGATE_CONFIG", str(config))
    return load_settings(data_dir=tmp_path)


def test_good_entries_parse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load(monkeypatch, tmp_path, GOOD_IMAP + GOOD_MULTIMAIL)
    imap, mm = settings.mailboxes
    assert imap.provider == "smtp_imap" and imap.sent_folder == "[Gmail]/Sent Mail" and imap.server_files_sent
    assert mm.provider == "multimail" and mm.multimail_mailbox_id == "01JMXK9F2A3B4C5D6E7F8G9H0J"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('smtp_url = "smtp+starttls', 'smtp_url = "http'), "smtp_url: the scheme must be"),
        (("smtp+starttls://agent%40example.com@smtp", "smtp://agent%40example.com@smtp"), "smtp_url: smtp:// sends"),
        (("imaps://agent%40example.com@imap", "imap://agent%40example.com@imap"), "imap_url: imap:// sends"),
        (("imaps://agent%40example.com@", "imaps://agent%40example.com:hunter2@"), "imap_url: the URL holds a pass"),
        (("imaps://agent%40example.com@", "imaps://"), "imap_url: the URL names no user"),
        (('password_env = "AGENT_MAIL_PASSWORD"\n', ""), "password_env is required"),
        (('"AGENT_MAIL_PASSWORD"', '"hunter2 is my password"'), "password_env: 'hunter2 is my password' is not"),
        (("server_files_sent = true", 'server_files_sent = true\napi_key_env = "X"'), "api_key_env does not apply"),
        (("server_files_sent = true", 'tls_ca_file = "/no/such/ca.pem"'), "tls_ca_file: /no/such/ca.pem is not"),
    ],
)
def test_bad_smtp_imap_entries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    assert change[0] in GOOD_IMAP
    with pytest.raises(SettingsError, match="mailbox agent@example.com: " + field.replace("(", r"\(")):
        load(monkeypatch, tmp_path, GOOD_IMAP.replace(*change))


def test_plain_smtp_and_imap_are_fine_to_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = GOOD_IMAP.replace("smtp+starttls://agent%40example.com@smtp.example.com:587", "smtp://a@127.0.0.1:2525")
    text = text.replace("imaps://agent%40example.com@imap.example.com", "imap://a@localhost:1143")
    assert load(monkeypatch, tmp_path, text).mailboxes[0].smtp_url == "smtp://a@127.0.0.1:2525"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('multimail_mailbox_id = "01JMXK9F2A3B4C5D6E7F8G9H0J"\n', ""), "multimail_mailbox_id is required"),
        (('api_key_env = "MULTIMAIL_API_KEY"\n', ""), "api_key_env is required"),
        (("multimail_mailbox_id", 'base_url = "http://api.example.com"\nmultimail_mailbox_id'), "base_url: https"),
        (("multimail_mailbox_id", 'smtp_url = "smtps://a@b"\nmultimail_mailbox_id'), "smtp_url does not apply"),
    ],
)
def test_bad_multimail_entries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    with pytest.raises(SettingsError, match="mailbox bot@multimail.example: " + field):
        load(monkeypatch, tmp_path, GOOD_MULTIMAIL.replace(*change))


def test_secrets_come_from_the_environment_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load(monkeypatch, tmp_path, GOOD_IMAP + GOOD_MULTIMAIL)
    store = SandboxStore(tmp_path / "sandbox.db")
    monkeypatch.delenv("AGENT_MAIL_PASSWORD", raising=False)
    monkeypatch.delenv("MULTIMAIL_API_KEY", raising=False)
    with pytest.raises(
        SettingsError, match=r"mailbox agent@example.com: password_env: .*AGENT_MAIL_PASSWORD is not set"
    ):
        build_providers(settings, None, store)  # type: ignore[arg-type]
    # CLI commands start without them; the mailbox says why when it is used.
    lenient = build_providers(settings, None, store, strict=False)  # type: ignore[arg-type]
    unavailable = lenient.for_mailbox("agent@example.com")
    assert isinstance(unavailable, UnavailableProvider)
    assert "AGENT_MAIL_PASSWORD is not set" in unavailable.reason
    monkeypatch.setenv("AGENT_MAIL_PASSWORD", "hunter2")
    monkeypatch.setenv("MULTIMAIL_API_KEY", "mm_live_x")
    providers = build_providers(settings, None, store)  # type: ignore[arg-type]
    imap = providers.for_mailbox("agent@example.com")
    assert isinstance(imap, SmtpImapProvider) and "hunter2" not in repr(imap)
    assert isinstance(providers.for_mailbox("BOT@multimail.example"), MultiMailProvider)
    assert providers.for_mailbox("someone@else.example") is providers.default
