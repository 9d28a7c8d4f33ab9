"""A small HTML tokenizer that is linear in its input and never raises.

The standard library's HTMLParser is quadratic on some malformed input (64 KB of ``<a x``
takes minutes) and can raise AssertionError, and what it reads comes from agents and strangers.
This one only moves forward: every step consumes input, each search starts where the last one
ended. It follows HTML's tokenizing rules closely enough to say what a browser would treat as
a tag, a comment or raw text; it builds no tree.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["start", "end", "text", "comment", "declaration"]

# Elements whose content is raw text up to their end tag (no tags inside), and those of them
# whose character references are decoded.
RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "title", "textarea"})
_RCDATA = frozenset({"title", "textarea"})
_END = {name: re.compile(rf"</{name}(?=[\s/>]|$)", re.IGNORECASE) for name in RAW_TEXT}
_TAG_NAME = re.compile(r"[A-Za-z][^\s/>]*")
_ATTR_NAME = re.compile(r"[^\s/>][^\s/>=]*")
_UNQUOTED = re.compile(r"[^\s>]*")
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    name: str = ""  # a tag's name, lowercased
    attrs: tuple[tuple[str, str | None], ...] = ()
    data: str = ""  # text (character references decoded), a comment's or a declaration's content


def tokens(html: str) -> Iterator[Token]:
    pos, size = 0, len(html)
    while pos < size:
        lt = html.find("<", pos)
        if lt < 0:
            yield Token("text", data=htmllib.unescape(html[pos:]))
            return
        if lt > pos:
            yield Token("text", data=htmllib.unescape(html[pos:lt]))
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            yield Token("comment", data=html[lt + 4 : end if end >= 0 else size])
            pos = end + 3 if end >= 0 else size
        elif html.startswith(("<!", "<?"), lt) or (html.startswith("</", lt) and not _TAG_NAME.match(html, lt + 2)):
            end = html.find(">", lt + 2)
            if not html.startswith("</>", lt):  # "</>" is dropped; the rest are bogus comments
                yield Token("declaration", data=html[lt + 2 : end if end >= 0 else size])
            pos = end + 1 if end >= 0 else size
        elif html.startswith("</", lt):
            name = _TAG_NAME.match(html, lt + 2)
            assert name is not None  # checked by the branch above
            end = html.find(">", name.end())
            if end < 0:
                return  # end of input inside a tag: HTML drops the tag
            yield Token("end", name=name.group().lower())
            pos = end + 1
        else:
            name = _TAG_NAME.match(html, lt + 1)
            if name is None:
                yield Token("text", data="<")
                pos = lt + 1
                continue
            tag = name.group().lower()
            attrs, pos = _attributes(html, name.end())
            if pos < 0:
                return
            yield Token("start", name=tag, attrs=attrs)
            if tag in RAW_TEXT:
                close = _END[tag].search(html, pos)
                stop = close.start() if close else size
                text = html[pos:stop]
                if text:
                    yield Token("text", data=htmllib.unescape(text) if tag in _RCDATA else text)
                pos = stop


def _attributes(html: str, pos: int) -> tuple[tuple[tuple[str, str | None], ...], int]:
    """A start tag's attributes from ``pos``, and where the tag ends (-1: at the end of input)."""
    attrs: list[tuple[str, str | None]] = []
    size = len(html)
    while True:
        pos = _SPACE.match(html, pos).end()  # type: ignore[union-attr]  # \s* always matches
        if pos >= size:
            return tuple(attrs), -1
        if html[pos] == ">":
            return tuple(attrs), pos + 1
        if html[pos] == "/":
            pos += 1
            continue
        name = _ATTR_NAME.match(html, pos)
        assert name is not None  # html[pos] is neither space, "/" nor ">"
        pos = _SPACE.match(html, name.end()).end()  # type: ignore[union-attr]
        value: str | None = None
        if html.startswith("=", pos):
            pos = _SPACE.match(html, pos + 1).end()  # type: ignore[union-attr]
            if pos < size and html[pos] in "\"'":
                end = html.find(html[pos], pos + 1)
                if end < 0:
                    return tuple(attrs), -1
                value, pos = html[pos + 1 : end], end + 1
            else:
                unquoted = _UNQUOTED.match(html, pos)
                assert unquoted is not None
                value, pos = unquoted.group(), unquoted.end()
            value = htmllib.unescape(value)
        attrs.append((name.group().lower(), value))
