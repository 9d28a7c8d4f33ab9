"""The parts of an outgoing email: its plain text, and for a markdown or HTML body a sanitized
HTML alternative. Both parts come from the one body the agent wrote (or a human edited), so an
edit can never leave them saying different things.

The HTML is cleaned with nh3, the sanitizer the dashboard uses, with the same tags and inline
styles allowed; there are no images at all, so a recipient's client fetches nothing remote.
"""

from __future__ import annotations

import html as htmllib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import cache

import nh3
from markdown_it import MarkdownIt

from workflows.mail.htmltext import html_to_text
from workflows.models import EmailDraft

MAX_QUOTE_CHARS = 20_000
SIGNATURE_SEPARATOR = "-- "  # RFC 3676 4.3: mail clients recognise and fold what follows
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


@dataclass(frozen=True)
class Parts:
    text: str
    html: str | None = None


@cache
def _markdown() -> MarkdownIt:
    # CommonMark without raw HTML: markdown is for prose; an HTML body says body_format="html".
    return MarkdownIt("commonmark", {"html": False})


def sanitize_email_html(html: str) -> str:
    """HTML fit to send: no script, forms, images or remote loads; inline styles kept."""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes={**ATTRIBUTES, "*": {"style"}},  # "*": inline styles on every kept tag
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def markdown_to_html(body: str) -> str:
    html: str = _markdown().render(body)
    return html


def _text_signature(signature: str) -> str:
    return f"\n\n{SIGNATURE_SEPARATOR}\n{signature}" if signature else ""


def _html_signature(signature: str) -> str:
    if not signature:
        return ""
    lines = "<br>\n".join(htmllib.escape(line) for line in signature.splitlines())
    return f'\n<div class="signature">{SIGNATURE_SEPARATOR}<br>\n{lines}</div>'


def _text_quote(quote: str) -> str:
    if not quote:
        return ""
    said, _, original = quote.partition("\n")
    lines = "\n".join(f"> {line}" if line else ">" for line in original.splitlines())
    return f"\n\n{said}\n{lines}"


def _html_quote(quote: str) -> str:
    if not quote:
        return ""
    said, _, original = quote.partition("\n")
    lines = "<br>\n".join(htmllib.escape(line) for line in original.splitlines())
    return f"\n<p>{htmllib.escape(said)}</p>\n<blockquote>{lines}</blockquote>"


def quote_of(sender: str, date: datetime | None, text: str) -> str:
    """The quote a reply carries (bounded): who wrote the original, when, and its text."""
    if len(text) > MAX_QUOTE_CHARS:
        text = text[:MAX_QUOTE_CHARS].rstrip() + "\n[…]"
    when = f"On {format_datetime(date)}, " if date else ""
    return f"{when}{sender or 'someone'} wrote:\n{text.strip()}"


def render_parts(draft: EmailDraft) -> Parts:
    """What goes out: the text part always, the HTML part for markdown and HTML bodies."""
    signature, quote = draft.signature, draft.quote
    if draft.body_format == "text":
        return Parts(text=draft.body + _text_signature(signature) + _text_quote(quote))
    source = markdown_to_html(draft.body) if draft.body_format == "markdown" else draft.body
    html = sanitize_email_html(source)
    # A markdown source reads well as text; HTML is turned into text from what is sent.
    text = draft.body if draft.body_format == "markdown" else html_to_text(html)
    return Parts(
        text=text.rstrip() + _text_signature(signature) + _text_quote(quote),
        html=html + _html_signature(signature) + _html_quote(quote),
    )
