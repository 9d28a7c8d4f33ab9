"""`mailgate auth`: OAuth grants for mailboxes with auth = "oauth2"."""

from __future__ import annotations

import click

from server.cli.command import Shown, columns, command, group
from server.credentials import load_secrets
from server.settings import Settings
from server.stores import grant_database
from workflows.providers.oauth import GrantStore


@group
def auth() -> None:
    """OAuth for mailboxes with auth = "oauth2" (Gmail, Microsoft 365, or a custom server)."""


def _grants(settings: Settings) -> GrantStore:
    return GrantStore(settings.data_dir, load_secrets(settings).secret_key, grant_database(settings))


@command(auth, "login", opens="settings", json=False)
@click.argument("address")
@click.option("--no-browser", is_flag=True, help="Print the URL to open instead of opening a browser.")
@click.option("--device", is_flag=True, help="Device-code flow: enter a code on another device (headless servers).")
async def auth_login(settings: Settings, address: str, no_browser: bool, device: bool) -> int:
    """Connect a mailbox: the authorization-code flow with PKCE, or --device."""
    from server.oauth_login import login_with_code, login_with_device, oauth_entry

    def announce(text: str) -> None:
        click.echo(text, err=True)

    entry = oauth_entry(settings, address)
    store = _grants(settings)
    if device:
        grant = await login_with_device(entry, store, announce)
    else:
        grant = await login_with_code(entry, store, announce, browser=not no_browser)
    click.echo(f"{entry.address} is connected; the grant is stored encrypted in {settings.data_dir}")
    return 0 if grant.refresh_token else 1


@command(auth, "status", opens="settings")
@click.argument("address", required=False)
async def auth_status(settings: Settings, address: str | None) -> Shown:
    """Which OAuth mailboxes are connected, and until when their access tokens hold."""
    from server.oauth_login import oauth_entry, status_of

    entries = [oauth_entry(settings, address)] if address else [e for e in settings.mailboxes if e.auth == "oauth2"]
    store = _grants(settings)
    found = [await status_of(entry, store) for entry in entries]
    rows = [[s.mailbox, s.provider, "yes" if s.connected else "no", s.state] for s in found]
    # One mailbox asked for: one JSON object.
    return Shown(found[0] if address else found, lambda: columns(rows, ["MAILBOX", "PROVIDER", "CONNECTED", "STATE"]))


@command(auth, "logout", opens="settings", json=False)
@click.argument("address")
@click.option("--local-only", is_flag=True, help="Forget the grant here without revoking it at the provider.")
async def auth_logout(settings: Settings, address: str, local_only: bool) -> int:
    """Revoke a mailbox's grant at the provider and forget it (sending and reading stop until the next login)."""
    from server.oauth_login import oauth_entry
    from server.oauth_logout import logout
    from workflows.providers.oauth import OAuthError

    entry = oauth_entry(settings, address)
    try:
        click.echo(await logout(entry, _grants(settings), local_only=local_only))
    except OAuthError as exc:
        click.echo(
            f"mailgate: {entry.address}: the grant could not be revoked, so it was kept: {exc}. "
            f"Try again, or `mailgate auth logout {entry.address} --local-only` to forget it here anyway.",
            err=True,
        )
        return 1
    return 0
