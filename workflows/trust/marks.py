"""The mark on every message mailgate itself sends to humans (notices with links and codes).

A notice may end up where an agent reads: a provider that files a copy in Sent or All Mail, an
approver address that is itself a mailgate mailbox, a human's reply quoting it. So every notice
carries a token ``mailgate-notice:<nonce>.<mac>`` (an ``X-Mailgate-Mark`` header and a last line
of its text, the only place MultiMail keeps), and every store and provider refuses to show a
message carrying a valid one to an agent. The MAC is an HMAC under a key derived from the
server's secret key: a sender of inbound mail cannot make one, so cannot hide mail from the agent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from email.parser import BytesHeaderParser
from email.policy import compat32

HEADER = "X-Mailgate-Mark"
_TOKEN = re.compile(r"mailgate-notice:([0-9a-f]{16})\.([0-9a-f]{32})")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
MAX_HEADER_BYTES = 256 * 1024


def mark_key(secret_key: bytes) -> bytes:
    # A key of its own, so a mark can never be replayed as a link, session or upgrade code.
    return hmac.new(secret_key, b"mailgate notice marks v1", hashlib.sha256).digest()


class NoticeMarks:
    """Makes and recognises marks with one deployment's key (workers and front doors share it)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def token(self, message_id: str) -> str:
        """The mark of one message (the same on every retry: it follows the fixed Message-ID)."""
        nonce = hashlib.sha256(message_id.encode()).hexdigest()[:16]
        return f"mailgate-notice:{nonce}.{self._mac(nonce)}"

    def in_text(self, text: str) -> bool:
        """A valid mark anywhere in this text (a copy of one a human quoted counts too)."""
        return any(hmac.compare_digest(m.group(2), self._mac(m.group(1))) for m in _TOKEN.finditer(text))

    def in_message(self, raw: bytes, text: str = "") -> bool:
        """A valid mark in the message's header or its decoded text (``text``, when parsed already)."""
        end = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES)
        head = raw[: end.end()] if end else raw[:MAX_HEADER_BYTES]
        headers = BytesHeaderParser(policy=compat32).parsebytes(head)
        if any(self.in_text(str(value)) for value in headers.get_all(HEADER, [])):
            return True
        return self.in_text(text)
