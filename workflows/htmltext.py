"""HTML mail as readable plain text, with a small single-pass tokenizer.

Hidden elements (``display:none``, ``hidden``) are dropped: a human reading the mail never
sees them, so text in them is a classic place to hide instructions meant for an agent.

Not the standard library's ``html.parser``: it is quadratic on some unclosed constructs
(``<!--`` repeated: 80 KB took 7 s here), and HTML mail comes from strangers. This tokenizer
looks at each character a bounded number of times, whatever the input: an unclosed comment,
tag or quote runs to the end of the document (as in a browser) instead of being retried at
every later ``<``. Nesting deeper than `MAX_NESTING` and input beyond `MAX_HTML_CHARS` are
cut, with a note in the text.
"""

from __future__ import annotations

import re
from html import unescape

MAX_HTML_CHARS = 1_000_000
MAX_NESTING = 500
TRUNCATED = "[the rest of this HTML was not converted: it is too long or nested too deeply]"

_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
_RAW_TEXT = {"script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes", "plaintext"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG_NAME = re.compile(r"[A-Za-z][^\s/>]*")
_IN_TAG = re.compile(r"[^>\"']*")
_ATTR = re.compile(r"""([^\s/>"'=]+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?""")
_MAX_LINK_PIECES = 64  # a link's shown text is compared with its address only when short


def _tag_end(html: str, pos: int) -> int:
    """The index of the ``>`` closing a tag whose attributes start at `pos`, or -1; quotes honoured."""
    while True:
        pos = _IN_TAG.match(html, pos).end()  # type: ignore[union-attr]  # matches the empty string
        if pos >= len(html):
            return -1
        if html[pos] == ">":
            return pos
        close = html.find(html[pos], pos + 1)
        if close < 0:
            return -1
        pos = close + 1


def _attributes(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ATTR.finditer(text):
        name = match.group(1).lower()
        value = next((g for g in match.groups()[1:] if g is not None), "")
        found.setdefault(name, unescape(value))
    return found


class _TextMaker:
    def __init__(self) -> None:
        self.out: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._open: dict[str, int] = {}  # tag -> how many are on the stack (a stack scan per end tag was quadratic)
        self._hiding = 0  # how many elements on the stack hide their content
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []  # (href, where its text starts)
        self.truncated = False

    def start(self, tag: str, attr: dict[str, str], self_closing: bool) -> None:
        if tag not in _VOID:
            if len(self._stack) >= MAX_NESTING:
                self.truncated = True
                return
            hides = tag in _SKIP or "hidden" in attr or bool(_HIDDEN_STYLE.search(attr.get("style", "")))
            self._stack.append((tag, hides))
            self._open[tag] = self._open.get(tag, 0) + 1
            self._hiding += hides
        if not self._hiding:
            self._show_start(tag, attr)
        if self_closing and tag not in _VOID:
            self.end(tag)

    def _show_start(self, tag: str, attr: dict[str, str]) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
            elif tag == "hr":
                self.out.append("---\n")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img" and attr.get("alt"):
            self.out.append(f"[image: {attr['alt']}]")
        if tag == "pre":
            self._pre += 1
        if tag == "a":
            href = attr.get("href", "")
            kept = href if href.startswith(("http://", "https://", "mailto:")) else None
            self._links.append((kept, len(self.out)))

    def end(self, tag: str) -> None:
        if tag in _VOID:
            return
        hidden = bool(self._hiding)
        if self._open.get(tag):
            while self._stack:
                name, hides = self._stack.pop()
                self._open[name] -= 1
                self._hiding -= hides
                if name == tag:
                    break
        if hidden:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag == "a" and self._links:
            href, start = self._links.pop()
            if href:
                pieces = self.out[start:] if len(self.out) - start <= _MAX_LINK_PIECES else None
                shown = "".join(pieces).strip() if pieces is not None else None
                if href.removeprefix("mailto:") != shown:
                    self.out.append(f" ({href})")
        if tag in _BLOCK:
            self.out.append("\n")

    def data(self, text: str) -> None:
        if self._hiding or not text:
            return
        text = unescape(text)
        # Spaces in <pre> are kept through the final line trimming as NULs (never in mail text).
        self.out.append(text.replace(" ", "\x00") if self._pre else _SPACES.sub(" ", text.replace("\n", " ")))

    def feed(self, html: str) -> None:
        """One pass over `html`: every find starts where the last construct ended."""
        pos, size = 0, len(html)
        while pos < size and not self.truncated:
            lt = html.find("<", pos)
            if lt < 0:
                self.data(html[pos:])
                return
            if lt > pos:
                self.data(html[pos:lt])
            pos = self._markup(html, lt)

    def _markup(self, html: str, lt: int) -> int:
        """Handle the markup at `lt` (a ``<``); returns where the text after it starts."""
        size = len(html)
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            return size if close < 0 else close + 3
        if html.startswith(("<!", "<?"), lt):
            close = html.find(">", lt + 2)
            return size if close < 0 else close + 1
        closing = html.startswith("</", lt)
        name = _TAG_NAME.match(html, lt + 2 if closing else lt + 1)
        if name is None:
            self.data("<")
            return lt + 1
        close = _tag_end(html, name.end())
        if close < 0:
            return size  # an unclosed tag swallows the rest, as in a browser
        tag = name.group().lower()
        if closing:
            self.end(tag)
            return close + 1
        inside = html[name.end() : close]
        self.start(tag, _attributes(inside), inside.endswith("/"))
        if tag not in _RAW_TEXT or tag in _VOID:
            return close + 1
        # Raw text (script, style, title...): everything up to the matching end tag.
        finish = re.compile(rf"</{re.escape(tag)}[\s/>]", re.IGNORECASE).search(html, close + 1)
        stop = finish.start() if finish else size
        self.data(html[close + 1 : stop])
        return stop


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: blocks become lines, links keep their address."""
    maker = _TextMaker()
    maker.feed(html[:MAX_HTML_CHARS])
    lines = [line.strip(" ") for line in "".join(maker.out).split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip().replace("\x00", " ")
    if maker.truncated or len(html) > MAX_HTML_CHARS:
        text = f"{text}\n\n{TRUNCATED}".strip()
    return text
