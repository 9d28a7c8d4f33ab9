"""mailgate's own client for MultiMail's REST API: the endpoints mailgate uses, and nothing else.

Written from MultiMail's published OpenAPI document (version 2.0.0, ``spec.json`` in MultiMail's
CLI repository), with the behaviour its MCP server and CHANGELOG describe where the document is
silent (attachments over 50 KB come as a presigned URL). It replaces MultiMail's retired Python
SDK. Every path segment is percent-encoded (ids and attachment names alike), request bodies are
checked against the document's limits before they leave, and every answer is parsed into the
typed models below, so a change in MultiMail's shapes fails here with MultiMail's words.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Limits from the OpenAPI document.
MARKDOWN_MAX_CHARS = 262_144  # SendEmailRequest.markdown / ReplyRequest.markdown maxLength
SUBJECT_MAX_CHARS = 998  # SendEmailRequest.subject maxLength
TO_MAX = 50  # SendEmailRequest.to maxItems
LIST_LIMIT_MAX = 100  # GET .../emails: limit 1..100
INLINE_ATTACHMENT_MAX = 50_000  # larger attachments come as a presigned URL (MCP server, CHANGELOG)
IDEMPOTENCY_TTL_HOURS = 24  # idempotency_key: "Dedup key (24h TTL)"

Direction = Literal["inbound", "outbound"]


class MultiMailError(Exception):
    """MultiMail said no (``status_code``) or said something this client cannot read."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RateLimitError(MultiMailError):
    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class DuplicateReply(MultiMailError):
    """409 on a reply: the same content was replied to the same email within 60 seconds."""


class _Answer(BaseModel):
    # MultiMail may add fields; those mailgate does not read pass through untouched.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def data(self) -> dict[str, Any]:
        """The answer as MultiMail's JSON (its own field names), for the provider's mapping."""
        return self.model_dump(by_alias=True, mode="json")


M = TypeVar("M", bound=_Answer)


class Mailbox(_Answer):
    id: str
    address: str = ""
    oversight_mode: str = "gated_send"


class EmailSummary(_Answer):
    id: str
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)
    subject: str | None = None
    direction: Direction | None = None
    status: str | None = None
    received_at: str | int | None = None
    thread_id: str | None = None
    has_attachments: bool = False
    delivered_at: str | None = None
    bounced_at: str | None = None


class AttachmentMeta(_Answer):
    name: str
    size: int | None = None
    content_type: str | None = None


class Email(EmailSummary):
    cc: list[str] = Field(default_factory=list)
    markdown: str | None = None
    attachments: list[AttachmentMeta] = Field(default_factory=list)
    approved_at: str | None = None
    approved_by: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class EmailList(_Answer):
    emails: list[EmailSummary] = Field(default_factory=list)
    cursor: str | None = None


class Thread(_Answer):
    thread_id: str | None = None
    emails: list[EmailSummary] = Field(default_factory=list)


class Accepted(_Answer):
    """202 (queued, ``pending_scan``) or 200 (``already_sent``: the idempotency key was seen)."""

    id: str
    status: str = ""
    thread_id: str | None = None
    idempotent: bool = False


class PendingList(_Answer):
    emails: list[EmailSummary] = Field(default_factory=list)


class Tags(_Answer):
    tags: dict[str, str] = Field(default_factory=dict)


class TagDeleted(_Answer):
    deleted: bool = False


class OutgoingAttachment(BaseModel):
    name: str = Field(min_length=1)
    content_base64: str
    content_type: str


class ReplyBody(BaseModel):
    """ReplyRequest: MultiMail addresses a reply to the original sender and sets the subject."""

    markdown: str = Field(max_length=MARKDOWN_MAX_CHARS)
    cc: list[str] | None = None
    bcc: list[str] | None = None
    attachments: list[OutgoingAttachment] | None = None
    idempotency_key: str | None = None


class SendBody(ReplyBody):
    """SendEmailRequest."""

    to: list[str] = Field(min_length=1, max_length=TO_MAX)
    subject: str = Field(max_length=SUBJECT_MAX_CHARS)


def path(*segments: str) -> str:
    """``/v1/...`` with every segment percent-encoded: ``/``, ``#``, ``?`` and ``%`` included.

    Encoding leaves ``.`` and ``..`` as they are, and HTTP clients resolve them: a tag ``..``
    would DELETE the email itself. So no segment may be empty or only dots."""
    for segment in segments:
        if segment.strip(".") == "":
            raise ValueError(f"{segment!r} cannot be part of a MultiMail URL (it would step up the path)")
    return "/v1/" + "/".join(quote(segment, safe="") for segment in segments)


class MultiMailClient:
    """One API key's view of MultiMail, over one pooled httpx client."""

    def __init__(self, api_key: str, *, base_url: str, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never the key
        return f"MultiMailClient({self._http.base_url})"

    async def _request(
        self, method: str, url: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        answer = await self._http.request(method, url, json=json, params=query or None)
        if answer.status_code == 429:
            raise RateLimitError(_message(answer), answer.headers.get("retry-after"))
        if answer.status_code >= 400:
            kind = DuplicateReply if answer.status_code == 409 and "/reply/" in url else MultiMailError
            raise kind(_message(answer), answer.status_code)
        return answer

    async def _json(self, model: type[M], method: str, url: str, **kw: Any) -> M:
        answer = await self._request(method, url, **kw)
        try:
            return model.model_validate(answer.json())
        except (ValueError, ValidationError) as exc:
            raise MultiMailError(f"MultiMail's answer to {method} {url} is not what its API documents: {exc}") from exc

    async def list_mailboxes(self) -> list[Mailbox]:
        return (await self._json(_Mailboxes, "GET", "/v1/mailboxes")).mailboxes

    async def send(self, mailbox_id: str, body: SendBody) -> Accepted:
        return await self._json(Accepted, "POST", path("mailboxes", mailbox_id, "send"), json=_payload(body))

    async def reply(self, mailbox_id: str, email_id: str, body: ReplyBody) -> Accepted:
        url = path("mailboxes", mailbox_id, "reply", email_id)
        return await self._json(Accepted, "POST", url, json=_payload(body))

    async def list_emails(
        self,
        mailbox_id: str,
        *,
        direction: Direction | None = None,
        status: str | None = None,
        sender: str | None = None,
        subject_contains: str | None = None,
        date_after: str | None = None,
        since_id: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> EmailList:
        params = {
            "date_after": date_after,
            "direction": direction,
            "status": status,
            "sender": sender,
            "subject_contains": subject_contains,
            "since_id": since_id,
            "cursor": cursor,
            "limit": max(1, min(limit, LIST_LIMIT_MAX)),
        }
        return await self._json(EmailList, "GET", path("mailboxes", mailbox_id, "emails"), params=params)

    async def get_email(self, mailbox_id: str, email_id: str) -> Email:
        return await self._json(Email, "GET", path("mailboxes", mailbox_id, "emails", email_id))

    async def get_thread(self, mailbox_id: str, thread_id: str) -> Thread:
        return await self._json(Thread, "GET", path("mailboxes", mailbox_id, "threads", thread_id))

    async def cancel(self, mailbox_id: str, email_id: str) -> None:
        await self._request("POST", path("mailboxes", mailbox_id, "emails", email_id, "cancel"))

    async def get_tags(self, mailbox_id: str, email_id: str) -> dict[str, str]:
        return (await self._json(Tags, "GET", path("mailboxes", mailbox_id, "emails", email_id, "tags"))).tags

    async def set_tags(self, mailbox_id: str, email_id: str, tags: dict[str, str]) -> dict[str, str]:
        url = path("mailboxes", mailbox_id, "emails", email_id, "tags")
        return (await self._json(Tags, "PUT", url, json={"tags": tags})).tags

    async def delete_tag(self, mailbox_id: str, email_id: str, key: str) -> bool:
        """Remove one tag; True if MultiMail says it deleted one."""
        url = path("mailboxes", mailbox_id, "emails", email_id, "tags", key)
        return (await self._json(TagDeleted, "DELETE", url)).deleted

    async def pending(self) -> list[EmailSummary]:
        """Emails waiting for MultiMail's human (needs the ``oversight`` scope)."""
        return (await self._json(PendingList, "GET", "/v1/oversight/pending")).emails

    async def attachment(self, mailbox_id: str, email_id: str, filename: str) -> bytes:
        """One attachment's bytes, in whichever documented form MultiMail answers.

        Small files come inline (base64 in JSON, or the bytes themselves); larger ones as a
        presigned URL, in JSON or as a redirect. The URL is fetched without our API key.
        """
        answer = await self._request("GET", path("mailboxes", mailbox_id, "emails", email_id, "attachments", filename))
        if answer.is_redirect and answer.headers.get("location"):
            return await self._presigned(str(answer.url.join(answer.headers["location"])))
        if "json" not in answer.headers.get("content-type", ""):
            return answer.content
        try:
            data = answer.json()
        except ValueError as exc:
            raise MultiMailError(f"attachment {filename!r}: MultiMail's JSON answer is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise MultiMailError(f"attachment {filename!r}: MultiMail answered {type(data).__name__}, not an object")
        inline = next((data[k] for k in ("content_base64", "content", "data") if isinstance(data.get(k), str)), None)
        if inline is not None:
            try:
                return base64.b64decode(inline, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MultiMailError(f"attachment {filename!r}: its base64 content is invalid: {exc}") from exc
        link = next((data[k] for k in ("url", "download_url", "presigned_url") if isinstance(data.get(k), str)), None)
        if link is None:
            raise MultiMailError(f"attachment {filename!r}: MultiMail's answer has neither content nor a URL")
        return await self._presigned(link)

    async def _presigned(self, url: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise MultiMailError(f"the attachment's download URL is not http(s): {url[:80]!r}")
        # A presigned URL carries its own authority: our API key must not go to another host.
        async with httpx.AsyncClient(timeout=self._http.timeout, follow_redirects=True) as plain:
            answer = await plain.get(url)
        if answer.status_code >= 400:
            raise MultiMailError(f"the attachment's download URL answered {answer.status_code}", answer.status_code)
        return answer.content

    async def close(self) -> None:
        await self._http.aclose()


class _Mailboxes(_Answer):
    mailboxes: list[Mailbox] = Field(default_factory=list)


def _payload(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_none=True)


def _message(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:300] or answer.reason_phrase
    if isinstance(data, dict):
        text = data.get("error") or data.get("message") or data
        return str(text)[:300]
    return str(data)[:300]
