"""HTML mail as readable, Markdown-ish plain text, from the linear tokenizer in `workflows.mail.htmltokens`:
headings become ``#`` lines, list items ``- `` lines, links ``[text](address)``.

Hidden elements (``display:none``, ``hidden``) are dropped: a human reading the mail never
sees them, so text in them is a classic place to hide instructions meant for an agent.

Not the standard library's ``html.parser``: it is quadratic on some unclosed constructs
(``<!--`` repeated: 80 KB took 7 s here), and HTML mail comes from strangers. Nesting deeper
than `MAX_NESTING` and input beyond `MAX_HTML_CHARS` are cut, with a note in the text.
"""

from __future__ import annotations

import re

from workflows.mail.htmltokens import tokens

MAX_HTML_CHARS = 1_000_000
MAX_NESTING = 500
TRUNCATED = "[the rest of this HTML was not converted: it is too long or nested too deeply]"

_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "object"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
}  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_MAX_LINK_PIECES = 64  # a link's shown text is compared with its address only when short


class _TextMaker:
    def __init__(self) -> None:
        self.out: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._open: dict[str, int] = {}  # tag -> how many are on the stack (a stack scan per end tag was quadratic)
        self._hiding = 0  # how many elements on the stack hide their content
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []  # (href, where its text starts)
        self.truncated = False

    def start(self, tag: str, attr: dict[str, str]) -> None:
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

    def _show_start(self, tag: str, attr: dict[str, str]) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
            elif tag == "hr":
                self.out.append("---\n")
            elif tag in _HEADINGS:
                self.out.append("#" * _HEADINGS[tag] + " ")
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
            self.out.append("")  # becomes "[" if the link is shown as [text](address)

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
                pieces = self.out[start + 1 :] if len(self.out) - start <= _MAX_LINK_PIECES else None
                shown = "".join(pieces).strip() if pieces is not None else None
                if shown and href.removeprefix("mailto:") != shown:
                    self.out[start] = "["  # the placeholder left where the link's text starts
                    self.out.append(f"]({href})")
                elif href.removeprefix("mailto:") != shown:
                    self.out.append(f" ({href})")
        if tag in _BLOCK:
            self.out.append("\n")

    def data(self, text: str) -> None:
        if self._hiding or not text:
            return
        # Spaces in <pre> are kept through the final line trimming as NULs (never in mail text).
        self.out.append(text.replace(" ", "\x00") if self._pre else _SPACES.sub(" ", text.replace("\n", " ")))

    def feed(self, html: str) -> None:
        for token in tokens(html):
            if self.truncated:
                return
            if token.kind == "text":
                self.data(token.data)
            elif token.kind == "start":
                attrs: dict[str, str] = {}
                for name, value in token.attrs:
                    attrs.setdefault(name, value or "")
                self.start(token.name, attrs)
            elif token.kind == "end":
                self.end(token.name)


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: blocks become lines, links keep their address."""
    maker = _TextMaker()
    maker.feed(html[:MAX_HTML_CHARS])
    lines = [line.strip(" ") for line in "".join(maker.out).split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip().replace("\x00", " ")
    if maker.truncated or len(html) > MAX_HTML_CHARS:
        text = f"{text}\n\n{TRUNCATED}".strip()
    return text
