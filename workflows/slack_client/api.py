"""A small client for the Slack Web API methods mailgate uses, per Slack's published contract.

Every method is a POST with a bearer token and a JSON body; Slack answers HTTP 200 with
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``, and 429 with ``Retry-After`` when it
throttles. Errors that a retry cannot fix (a bad token, a missing channel) are ``permanent``.
"""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_API_URL = "https://slack.com/api"
TIMEOUT = 10.0
# Errors a retry cannot fix: configuration or a message that is gone.
PERMANENT_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "user_not_found",
        "invalid_blocks",
        "invalid_arguments",
        "invalid_trigger_id",
        "expired_trigger_id",
        "msg_too_long",
    }
)


class SlackError(Exception):
    def __init__(self, method: str, error: str, *, permanent: bool) -> None:
        super().__init__(f"Slack {method}: {error}")
        self.error = error
        self.permanent = permanent


class SlackApi:
    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        self._token = token
        self._api_url = api_url.rstrip("/")

    def __repr__(self) -> str:
        return f"SlackApi({self._api_url!r})"  # never the token

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self._token}", "content-type": "application/json; charset=utf-8"}
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http:
            try:
                response = await http.post(f"{self._api_url}/{method}", json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise SlackError(method, f"unreachable: {exc!r}", permanent=False) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise SlackError(method, f"HTTP {response.status_code}", permanent=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise SlackError(method, f"HTTP {response.status_code}, not JSON", permanent=False) from exc
        if not isinstance(data, dict):
            raise SlackError(method, "the answer is not a JSON object", permanent=False)
        if not data.get("ok"):
            error = str(data.get("error") or f"HTTP {response.status_code}")
            raise SlackError(method, error, permanent=error in PERMANENT_ERRORS)
        return data
