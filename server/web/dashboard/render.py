"""Turning sends into HTML safely: templates, sanitized HTML bodies, diffs and ages."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from workflows.models import EmailAddress, EmailDraft

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

_HTML_HINT = re.compile(r"<\s*(html|body|p|div|br|table|a|b|i|em|strong|span|img|h[1-6]|ul|ol|li)\b", re.IGNORECASE)
# No img (remote images track the reader), no style (it can restyle the dashboard), no forms.
SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
SAFE_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


def looks_like_html(body: str) -> bool:
    return bool(_HTML_HINT.search(body))


def sanitize_html(html: str) -> Markup:
    """HTML that cannot run script, load anything, or reach out: safe to put in the page."""
    cleaned = nh3.clean(
        html,
        tags=SAFE_TAGS,
        attributes=SAFE_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(cleaned)  # noqa: S704 - nh3 has just removed everything unsafe


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
        "sanitize": sanitize_html,
        "looks_like_html": looks_like_html,
    }
    env.filters.update(filters)
    return env
