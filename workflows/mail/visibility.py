"""Text that reads differently from what it is: invisible and direction-changing characters, and
content an HTML view would hide.

A human approves what they see. Bidi controls (U+202E turns ``moc.ynapmoc@bob.ti`` into what
looks like ``it.bob@company.com``), zero-width characters and markup that a renderer hides
make the bytes differ from the picture. Submitted header text refuses them (workflows.mail.addresses);
everything shown to a human marks them (``<U+202E>``) and names what an HTML view would hide.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

from workflows.mail.htmltokens import Token, tokens
from workflows.models import EmailDraft

# Invisible letters that are not category Cf: Hangul fillers, the combining grapheme joiner.
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u3164\uffa0")


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Cc" and char not in "\t\n\r") or char in _INVISIBLE_EXTRA


@functools.cache
def _invisible_re() -> re.Pattern[str]:
    """Every Cf character (bidi controls, zero-width characters, soft hyphen, tag characters, ...),
    every control but tab and line breaks (an escape sequence can hide text in a terminal), and
    the extras, as one character class: checking a long body is one regex scan. Built on first
    use from this Python's Unicode tables (a scan of about 0.1 s, kept out of imports)."""
    chars = [chr(c) for c in range(0x110000) if _invisible(chr(c))]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


_HTML_HINT = re.compile(
    r"<!--|</?(html|head|body|p|div|br|table|a|b|i|em|strong|span|img|h[1-6]|ul|ol|li|font|style|script"
    r"|title|template|noscript|center|td|tr)\b",
    re.IGNORECASE,
)
# Elements whose content no HTML view shows.
_UNSHOWN = frozenset({"script", "style", "head", "title", "template", "noscript"})
_HIDING_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0*(\.0*)?(px|pt|em|rem|%)?\s*(;|$)|opacity\s*:\s*0*(\.0*)?\s*(;|$)",
    re.IGNORECASE,
)
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
MAX_FINDINGS = 20
SHOWN_CHARS = 120


def is_invisible(char: str) -> bool:
    return _invisible_re().fullmatch(char) is not None


def mark(char: str) -> str:
    """How an invisible character is shown to a human: ``<U+202E>``."""
    return f"<U+{ord(char):04X}>"


def describe(char: str) -> str:
    fallback = "control character" if unicodedata.category(char) == "Cc" else "unnamed format character"
    return f"U+{ord(char):04X} {unicodedata.name(char, fallback)}"


def invisible_chars(text: str) -> Counter[str]:
    """Each invisible character in ``text`` with how often it occurs, in order of first use."""
    return Counter(_invisible_re().findall(text))


def show_invisible(text: str) -> str:
    """The text with every invisible character replaced by its visible ``<U+XXXX>`` token."""
    return _invisible_re().sub(lambda m: mark(m.group()), text)


def strip_invisible(text: str) -> str:
    return _invisible_re().sub("", text)


def invisible_error(value: str, field: str) -> str | None:
    """Why ``value`` may not go into a header, or None when it has no invisible character."""
    found = invisible_chars(value)
    if not found:
        return None
    names = ", ".join(describe(c) for c in found)
    return (
        f"{field} contains invisible or direction-changing characters ({names}): {show_invisible(value)!r}; "
        "they make text read differently from what it is (a name can pose as another address), so remove them"
    )


def looks_like_html(text: str) -> bool:
    return bool(_HTML_HINT.search(text))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


class _OpenElements:
    """The open elements of a token stream, each with why its content is hidden (or None).

    Linear: an end tag finds its element through an index by name, and every element is pushed
    and popped once, however the tags nest or fail to.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[str, str | None]] = []
        self._where: dict[str, list[int]] = {}
        self._hiding: list[int] = []

    def push(self, tag: str, why: str | None) -> None:
        self._where.setdefault(tag, []).append(len(self._stack))
        if why:
            self._hiding.append(len(self._stack))
        self._stack.append((tag, why))

    def close(self, tag: str) -> None:
        places = self._where.get(tag)
        if not places:
            return  # a stray end tag closes nothing
        target = places[-1]
        while len(self._stack) > target:
            name, _ = self._stack.pop()
            self._where[name].pop()
            if self._hiding and self._hiding[-1] == len(self._stack):
                self._hiding.pop()

    def hidden_because(self) -> str | None:
        return self._stack[self._hiding[-1]][1] if self._hiding else None


def _why_hidden(token: Token) -> str | None:
    values = dict(token.attrs)
    if token.name in _UNSHOWN:
        return f"inside <{token.name}>"
    if "hidden" in values:
        return f"inside <{token.name} hidden>"
    style = values.get("style") or ""
    if _HIDING_STYLE.search(style):
        return f'inside <{token.name} style="{_short(style)}">'
    return None


def hidden_by_html(text: str) -> list[str]:
    """What an HTML view of ``text`` would hide (empty when it does not look like HTML): comments,
    script/style/head content, elements hidden by an attribute or style. Linear in ``text``."""
    if not looks_like_html(text):
        return []
    found: list[str] = []
    open_elements = _OpenElements()
    for token in tokens(text):
        if token.kind == "start" and token.name not in _VOID:
            open_elements.push(token.name, _why_hidden(token))
        elif token.kind == "end":
            open_elements.close(token.name)
        elif token.kind == "comment" and token.data.strip():
            found.append(f"a comment <!-- -->: “{_short(token.data)}”")
        elif token.kind == "text" and token.data.strip():
            why = open_elements.hidden_because()
            if why:
                found.append(f"{why}: “{_short(token.data)}”")
    return found


def body_warnings(body: str) -> list[str]:
    """Why a body's text differs from what a reader would see of it, for the approver.

    Empty for a body that reads as it is. Mailgate sends bodies as text/plain, so markup goes out
    as written; it is still named, with what it would hide, because the recipient may paste or
    forward it into something that renders HTML, and because hiding is how an agent smuggles.
    """
    warnings = []
    found = invisible_chars(body)
    if found:
        counts = ", ".join(f"{describe(c)} ({n} times)" if n > 1 else describe(c) for c, n in found.items())
        warnings.append(
            f"The body contains {found.total()} invisible or direction-changing character(s): {counts}. "
            "They are sent; here each is shown as <U+XXXX>."
        )
    if looks_like_html(body):
        hidden = hidden_by_html(body)
        note = "The body contains HTML markup. It goes out as plain text: the recipient gets the tags as written."
        if hidden:
            more = f" (and {len(hidden) - MAX_FINDINGS} more)" if len(hidden) > MAX_FINDINGS else ""
            note += (
                " An HTML view would hide this text, which is sent: " + "; ".join(hidden[:MAX_FINDINGS]) + more + "."
            )
        warnings.append(note)
    return warnings


def draft_warnings(draft: EmailDraft, from_name: str = "") -> list[str]:
    """Everything in an outgoing email that reads differently from what it is, for its approver.

    Header text with invisible characters is refused at submission; a send made before that
    rule, or edited in Temporal directly, may still carry some, so they are named here too.
    """
    fields = [("The subject", draft.subject), ("The From name", from_name)]
    fields += [(f"The name or address of recipient {a.address}", f"{a.name} {a.address}") for a in draft.recipients()]
    fields += [(f"The name of attachment {n}", a.filename) for n, a in enumerate(draft.attachments, 1)]
    headers = [
        f"{what} contains invisible or direction-changing characters, shown as <U+XXXX>."
        for what, value in fields
        if invisible_chars(value)
    ]
    return body_warnings(draft.body) + headers
