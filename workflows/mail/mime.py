"""Building and reading RFC 5322 messages."""

from __future__ import annotations

import base64
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from workflows.mail.richtext import render_parts
from workflows.models import DeliveryRequest, EmailAddress, from_address


def _address(addr: EmailAddress) -> Address:
    return Address(display_name=addr.name, addr_spec=addr.address)


def build_message(request: DeliveryRequest) -> EmailMessage:
    """The message as it goes on the wire. Bcc recipients are in the envelope only."""
    draft = request.draft
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address(from_address(request.mailbox, request.from_name, draft))
    msg["To"] = [_address(a) for a in draft.to]
    if draft.cc:
        msg["Cc"] = [_address(a) for a in draft.cc]
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(request.date)
    msg["Message-ID"] = request.message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = " ".join(draft.references)
    if request.system:
        msg["X-Mailgate-Notice"] = request.send_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer it
    else:
        msg["X-Mailgate-Send-Id"] = request.send_id
    parts = render_parts(draft)
    msg.set_content(parts.text)
    if parts.html is not None:
        msg.add_alternative(parts.html, subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            base64.b64decode(attachment.content_b64),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return msg


def envelope_recipients(request: DeliveryRequest) -> list[str]:
    return [a.address for a in request.draft.recipients()]
