"""Email bodies sized for a model's context: the new text of a message, and parts of long texts.

Concise reading keeps what the sender wrote this time: quoted earlier messages (``>`` lines, an
"On ... wrote:" or Outlook "Original Message" block and all after it) and the signature (after
an RFC 3676 ``-- `` line, or a lone "Sent from my ..." line at the end) are left out. Long texts
come in parts: each part says where the next one starts, and the parts joined are the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HISTORY_START = re.compile(
    r"^(On .{0,300} wrote:|-+\s*Original Message\s*-+|-+\s*Forwarded message\s*-+|From: .{1,300}\bSent: .*)$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^From:\s.{1,300}$", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^(Sent|Date):\s", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(r"^(Sent from my .{1,60}|Get Outlook for .{1,40})$", re.IGNORECASE)
SIGNATURE_MAX_LINES = 15
# A cut looks this far back for a line end or a space, so parts do not end mid-word.
SOFT_CUT = 0.2


def concise_text(text: str) -> str:
    """The text without quoted history and the signature."""
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        bare = line.strip()
        if _HISTORY_START.match(bare):
            break
        if _OUTLOOK_FROM.match(bare) and i + 1 < len(lines) and _OUTLOOK_NEXT.match(lines[i + 1].strip()):
            break
        if bare.startswith(">"):
            continue
        kept.append(line)
    for i in range(len(kept) - 1, -1, -1):
        if kept[i].rstrip() == "--":
            if sum(1 for line in kept[i + 1 :] if line.strip()) <= SIGNATURE_MAX_LINES:
                del kept[i:]
            break
    while kept and (not kept[-1].strip() or _MOBILE_SIGNATURE.match(kept[-1].strip())):
        kept.pop()
    return "\n".join(kept).strip()


@dataclass(frozen=True)
class TextPart:
    text: str
    offset: int
    total: int
    next_offset: int | None

    @property
    def remaining(self) -> int:
        return 0 if self.next_offset is None else self.total - self.next_offset


class OffsetError(ValueError):
    pass


def text_part(text: str, offset: int, max_chars: int) -> TextPart:
    """``max_chars`` characters of ``text`` from ``offset``, cut after a line end or a space when
    one is near the limit; ``next_offset`` is where the next part starts (None at the end)."""
    if offset < 0 or offset > len(text) or (offset == len(text) and offset > 0):
        raise OffsetError(f"offset: {offset} is past the end (the text has {len(text)} characters)")
    end = offset + max_chars
    if end >= len(text):
        return TextPart(text=text[offset:], offset=offset, total=len(text), next_offset=None)
    floor = end - int(max_chars * SOFT_CUT)
    cut = text.rfind("\n", floor, end)
    if cut < 0:
        cut = text.rfind(" ", floor, end)
    end = cut + 1 if cut >= 0 else end
    return TextPart(text=text[offset:end], offset=offset, total=len(text), next_offset=end)
