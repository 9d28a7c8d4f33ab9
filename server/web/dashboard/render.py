"""Turning sends into HTML safely: templates, sanitized HTML bodies, diffs and ages."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from workflows.mail.htmltokens import tokens
from workflows.mail.richtext import ATTRIBUTES, TAGS
from workflows.mail.visibility import describe, invisible_chars, mark, show_invisible
from workflows.models import EmailAddress, EmailDraft

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

# No img (remote images track the reader), no style (it can restyle the dashboard), no forms.
# The one list, shared with the HTML part mailgate sends.
SAFE_TAGS = TAGS
SAFE_ATTRIBUTES = ATTRIBUTES
URL_SCHEMES = {"http", "https", "mailto"}
MAX_REMOVED = 50
MAX_CHECKED = 300_000  # characters of an HTML part compared with its sanitized form
MAX_TAGS = 10_000  # an HTML part with more is not rendered
_SHOWN = 120


def visible(value: object) -> Markup:
    """Escaped text in which each invisible or direction-changing character is a marked ``<U+XXXX>``."""
    text = str(value)
    found = invisible_chars(text)
    if not found:
        return escape(text)
    out = escape(text)
    for char in found:
        shown = Markup('<span class="invisible" title="{}">{}</span>').format(describe(char), mark(char))
        out = Markup(out.replace(char, shown))  # noqa: S704 - both sides are escaped above
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


@dataclass
class _Inventory:
    """What an HTML document holds, to compare with what the sanitizer kept."""

    texts: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # <script>/<style> content: dropped whole
    comments: list[str] = field(default_factory=list)
    declarations: list[str] = field(default_factory=list)
    tags: Counter[str] = field(default_factory=Counter)
    attributes: list[str] = field(default_factory=list)


def _inventory(html: str) -> _Inventory:
    found = _Inventory()
    raw: str | None = None
    for token in tokens(html):
        if token.kind == "start":
            raw = None
            if token.name in ("script", "style"):
                raw = token.name
            elif token.name not in SAFE_TAGS:
                found.tags[token.name] += 1
            else:
                found.attributes += _removed_attributes(token.name, token.attrs)
        elif token.kind == "text" and token.data.strip():
            if raw:
                found.dropped.append((raw, token.data))
            else:
                found.texts.append(token.data)
        elif token.kind == "comment" and token.data.strip():
            found.comments.append(token.data)
        elif token.kind == "declaration":
            found.declarations.append(token.data)
        elif token.kind == "end" and token.name == raw:
            raw = None
    return found


def _removed_attributes(tag: str, attrs: tuple[tuple[str, str | None], ...]) -> list[str]:
    removed = []
    allowed = SAFE_ATTRIBUTES.get(tag, set())
    for name, value in attrs:
        shown = f'{name}="{_short(value)}"' if value is not None else name
        if name not in allowed:
            removed.append(f"{shown} on <{tag}>")
        elif name == "href" and value and not _safe_url(value):
            removed.append(f"{shown} on <{tag}> (only http, https and mailto links are kept)")
    return removed


def _safe_url(url: str) -> bool:
    scheme, colon, _ = url.strip().partition(":")
    return not colon or "/" in scheme or "?" in scheme or "#" in scheme or scheme.lower() in URL_SCHEMES


def _lost(texts: list[str], kept: str) -> list[str]:
    """The texts not found in ``kept``, looked for in order. Each search starts where the last
    found text ended, and the search stops after MAX_REMOVED misses: linear in the input."""
    lost: list[str] = []
    at = 0
    for text in texts:
        wanted = " ".join(text.split())
        found = kept.find(wanted, at)
        if found < 0:
            lost.append(text)
            if len(lost) > MAX_REMOVED:
                break
        else:
            at = found + len(wanted)
    return lost


@dataclass(frozen=True)
class Sanitized:
    """An HTML part as the page shows it, and everything the sanitizer took out of it."""

    html: Markup
    removed: list[str]


def sanitize_report(html: str) -> Sanitized:
    """HTML that cannot run script, load anything, or reach out, beside a list of what was removed.

    Invisible characters become visible ``<U+XXXX>`` text first. The list comes from reading the
    original (comments, dropped elements with their content, tags, attributes) and, as a net
    for whatever else the sanitizer drops, from each piece of text that did not survive.
    """
    if html.count("<") > MAX_TAGS:
        # The sanitizer's HTML parser slows down sharply with deep, broken nesting: not rendered.
        return Sanitized(Markup(), [f"the whole part: with over {MAX_TAGS:,} tags it is not rendered here"])
    for char in invisible_chars(html):
        html = html.replace(char, f"&lt;U+{ord(char):04X}&gt;")
    cleaned = nh3.clean(
        html,
        tags=SAFE_TAGS,
        attributes=SAFE_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    before = _inventory(html[:MAX_CHECKED])
    kept = " ".join(" ".join(t.split()) for t in _inventory(cleaned).texts)
    removed = [f"a comment: “{_short(c)}”" for c in before.comments]
    removed += [f"a declaration: “{_short(d)}”" for d in before.declarations]
    removed += [f"<{tag}> with its content: “{_short(text)}”" for tag, text in before.dropped]
    removed += [f"text: “{_short(t)}”" for t in _lost(before.texts, kept)]
    removed += [f"<{tag}> tags: {n}" for tag, n in sorted(before.tags.items())]
    removed += [f"attribute {a}" for a in before.attributes]
    if len(removed) > MAX_REMOVED:
        removed = [*removed[:MAX_REMOVED], f"… and {len(removed) - MAX_REMOVED} more"]
    if len(html) > MAX_CHECKED:
        removed.append(f"(only the first {MAX_CHECKED:,} characters of this part were checked)")
    return Sanitized(Markup(cleaned), removed)  # noqa: S704 - nh3 has just removed everything unsafe


def sanitize_html(html: str) -> Markup:
    """HTML that cannot run script, load anything, or reach out: safe to put in the page."""
    return sanitize_report(html).html


def age(since: datetime | None, now: datetime | None = None) -> str:
    if since is None:
        return "?"
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min" if hours < 6 else f"{hours} h"
    return f"{hours // 24} days"


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


def addresses(items: tuple[EmailAddress, ...]) -> str:
    return ", ".join(str(a) for a in items)


def address_lines(items: tuple[EmailAddress, ...]) -> str:
    return "\n".join(str(a) for a in items)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del" or "same"
    text: str


@dataclass(frozen=True)
class FieldDiff:
    field: str
    lines: list[DiffLine]


def draft_diff(before: EmailDraft, after: EmailDraft) -> list[FieldDiff]:
    """Line diffs of each field a human changed, for the confirmation before approving edits."""
    diffs = []
    fields = [
        ("To", address_lines(before.to) or "(none)", address_lines(after.to) or "(none)"),
        ("Cc", address_lines(before.cc) or "(none)", address_lines(after.cc) or "(none)"),
        ("Bcc", address_lines(before.bcc) or "(none)", address_lines(after.bcc) or "(none)"),
        ("Subject", before.subject, after.subject),
        ("Body", before.body, after.body),
    ]
    for name, old, new in fields:
        if old == new:
            continue
        lines = []
        for line in difflib.ndiff(old.splitlines() or [""], new.splitlines() or [""]):
            tag, text = line[:2], line[2:]
            if tag == "? ":
                continue
            lines.append(DiffLine({"+ ": "add", "- ": "del"}.get(tag, "same"), text))
        diffs.append(FieldDiff(name, lines))
    return diffs


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters: dict[str, Any] = {
        "age": age,
        "when": when,
        "addresses": addresses,
        "address_lines": address_lines,
        "visible": visible,
        "visible_text": show_invisible,
        "invisible_count": lambda text: invisible_chars(str(text)).total(),
    }
    env.filters.update(filters)
    return env
