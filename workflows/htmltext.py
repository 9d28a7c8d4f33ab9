"""HTML mail as readable plain text, with the standard library's tolerant HTML parser.

Hidden elements (``display:none``, ``hidden``) are dropped: a human reading the mail never
sees them, so text in them is a classic place to hide instructions meant for an agent.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []  # (href, where its text starts)

    @property
    def _hidden(self) -> bool:
        return any(hides for _, hides in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag not in _VOID:
            hides = tag in _SKIP or "hidden" in attr or bool(_HIDDEN_STYLE.search(attr.get("style", "")))
            self._stack.append((tag, hides))
        if self._hidden:
            return
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

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        hidden = self._hidden
        if any(t == tag for t, _ in self._stack):
            while self._stack:
                if self._stack.pop()[0] == tag:
                    break
        if hidden:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag == "a" and self._links:
            href, start = self._links.pop()
            shown = "".join(self.out[start:]).strip()
            if href and href.removeprefix("mailto:") != shown:
                self.out.append(f" ({href})")
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        # Spaces in <pre> are kept through the final line trimming as NULs (never in mail text).
        self.out.append(data.replace(" ", "\x00") if self._pre else _SPACES.sub(" ", data.replace("\n", " ")))


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: blocks become lines, links keep their address."""
    maker = _TextMaker()
    try:
        maker.feed(html)
        maker.close()
    except (AssertionError, ValueError):  # pragma: no cover - the parser is tolerant; belt and braces
        pass
    lines = [line.strip(" ") for line in "".join(maker.out).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip().replace("\x00", " ")
