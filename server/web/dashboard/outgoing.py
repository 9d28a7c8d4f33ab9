"""An outgoing email as its approver sees it: the message mailgate will deliver, part by part.

The view is built from the same `build_message` the delivery activity uses, so what the page
lists is what goes on the wire: each recipient's display name apart from its address, Bcc
(always, it is in the envelope only), every MIME part with its type and size, a text part
as text and an HTML part (should one ever be sent) sanitized beside what the sanitizer removed.
Anything that reads differently from what it is gets a warning at the top.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import AddressHeader
from email.message import EmailMessage

from server.web.dashboard.render import Sanitized, sanitize_report
from workflows.mail.mime import build_message
from workflows.mail.visibility import draft_warnings
from workflows.models import DeliveryRequest, EmailDraft, SendState, from_address


@dataclass(frozen=True)
class Recipient:
    field: str  # "To", "Cc" or "Bcc"
    name: str
    address: str


@dataclass(frozen=True)
class Part:
    content_type: str  # the part's Content-Type header as sent
    encoding: str  # its Content-Transfer-Encoding
    size: int  # bytes of the decoded content
    text: str | None = None  # an inline text/plain part
    html: Sanitized | None = None  # an inline text/html part
    filename: str = ""  # an attachment
    attachment: int | None = None  # its index among the draft's attachments


@dataclass(frozen=True)
class Outgoing:
    from_name: str
    from_address: str
    subject: str
    recipients: list[Recipient]
    parts: list[Part]
    warnings: list[str]

    def of(self, field: str) -> list[Recipient]:
        return [r for r in self.recipients if r.field == field]


def _recipients(msg: EmailMessage, draft: EmailDraft) -> list[Recipient]:
    found = []
    for field in ("To", "Cc"):
        header = msg[field]
        if isinstance(header, AddressHeader):
            found += [Recipient(field, a.display_name, a.addr_spec) for a in header.addresses]
    return found + [Recipient("Bcc", a.name, a.address) for a in draft.bcc]


def _parts(msg: EmailMessage, draft: EmailDraft) -> list[Part]:
    parts = []
    attachments = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        assert isinstance(part, EmailMessage)
        ctype, encoding = str(part["Content-Type"]), str(part["Content-Transfer-Encoding"] or "")
        if part.get_content_disposition() == "attachment":
            # The page's state carries attachment names and sizes only: the size is the draft's.
            item = draft.attachments[attachments]
            parts.append(Part(ctype, encoding, item.size, filename=item.filename, attachment=attachments))
            attachments += 1
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            parts.append(Part(ctype, encoding, len(content)))
        elif part.get_content_type() == "text/html":
            parts.append(Part(ctype, encoding, len(content.encode()), html=sanitize_report(content)))
        else:
            parts.append(Part(ctype, encoding, len(content.encode()), text=str(content)))
    return parts


def outgoing(state: SendState, draft: EmailDraft) -> Outgoing:
    """``draft`` (the original or the human's edited version) as mailgate would deliver it for ``state``."""
    request = DeliveryRequest(
        send_id=state.send_id,
        mailbox=state.mailbox,
        from_name=state.from_name,
        draft=draft,
        message_id=state.message_id,
        date=state.requested_at,
    )
    msg = build_message(request)
    sender = from_address(state.mailbox, state.from_name, draft)  # a send_as alias, or the mailbox
    return Outgoing(
        from_name=sender.name,
        from_address=sender.address,
        subject=str(msg["Subject"]),
        recipients=_recipients(msg, draft),
        parts=_parts(msg, draft),
        warnings=draft_warnings(draft, sender.name),
    )
