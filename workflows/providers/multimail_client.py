"""MultiMail's own SDK (`multimail`, httpx-based ``AsyncMultiMail``), with the few calls it lacks.

The SDK 0.1.1 is used as it is for everything it does right: mailboxes, ``send_email`` (which
takes ``idempotency_key``), reading, threads, attachments, tags, cancel and webhooks. The
subclass below adds only what the API has and the SDK gets wrong or leaves out, each through
the SDK's own ``_request`` (its auth header, base URL, timeout and error mapping), so there is no
second REST client:

- ``reply``: the SDK's ``reply_email`` sends no ``idempotency_key``, so a retried reply could go
  out twice; the API accepts the key on replies as on sends.
- ``pending``: the SDK's ``list_pending`` reads the key ``pending``, the API answers ``emails``.
- ``emails_page``: the SDK's ``list_emails`` has no ``cursor``, ``since_id``, ``status`` or
  ``sender`` filters (and sends an undocumented ``offset``).

Path segments are checked by the provider before they get here: the SDK interpolates them
into URLs unencoded.
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # The package warns on import that its maintainers retire it on 2026-08-08; it is still
    # MultiMail's published Python SDK and the API it speaks is current.
    warnings.simplefilter("ignore", FutureWarning)
    from multimail import AsyncMultiMail, MultiMailError, RateLimitError

__all__ = ["MailgateMultiMail", "MultiMailError", "RateLimitError"]


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value}


class MailgateMultiMail(AsyncMultiMail):  # type: ignore[misc]
    async def reply(
        self,
        mailbox_id: str,
        email_id: str,
        *,
        markdown: str,
        cc: list[str] | None = None,
        bcc: list[str] | None = None,
        attachments: list[dict[str, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _body(markdown=markdown, cc=cc, bcc=bcc, attachments=attachments, idempotency_key=idempotency_key)
        result: dict[str, Any] = await self._request("POST", f"/v1/mailboxes/{mailbox_id}/reply/{email_id}", json=body)
        return result

    async def pending(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/v1/oversight/pending")
        # The API's key first, then the one the SDK reads.
        found = (data.get("emails") or data.get("pending") or []) if isinstance(data, dict) else []
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []

    async def emails_page(self, mailbox_id: str, **query: Any) -> dict[str, Any]:
        params = {name: value for name, value in query.items() if value is not None}
        data = await self._request("GET", f"/v1/mailboxes/{mailbox_id}/emails", params=params)
        return data if isinstance(data, dict) else {"emails": [], "cursor": None}
