"""The search syntax of search_email and check_inbox's ``query``, parsed into a typed query.

Familiar from mail clients: words and "quoted phrases" (all must match, in subject or body),
``from:``, ``to:``, ``subject:``, ``has:attachment``, ``is:unread``/``is:read``,
``in:inbox|sent|archive|trash|<folder>``, ``label:``, ``before:``/``after:`` (YYYY-MM-DD, UTC)
and ``thread:``. A value with spaces is quoted: ``subject:"weekly report"``. Bad syntax is a
``QuerySyntaxError`` that says what is wrong and how it should look.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from workflows.models import Frozen

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
OPERATORS = ("from", "to", "subject", "has", "is", "in", "label", "before", "after", "thread")
_TOKEN = re.compile(r'\s*(?:(?P<op>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"]+))?')
_NOT_OPERATORS = {"http", "https", "mailto", "re", "fw", "fwd", "aw", "sv"}
_WORD = re.compile(r"\w+")
_FOLDER = re.compile(r"^[\w.\- /]{1,100}$")


class QuerySyntaxError(ValueError):
    pass


class SearchQuery(Frozen):
    """All conditions must hold. Terms are lower-case word sequences (a word is a 1-word phrase)."""

    terms: tuple[tuple[str, ...], ...] = ()
    subject: tuple[tuple[str, ...], ...] = ()
    senders: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    has_attachment: bool = False
    unread: bool | None = None
    folder: str | None = None
    labels: tuple[str, ...] = ()
    before: datetime | None = None
    after: datetime | None = None
    thread: str | None = None

    @property
    def ranked(self) -> bool:
        return bool(self.terms or self.subject)


def words(text: str) -> tuple[str, ...]:
    """The words of a text as the full-text index sees them (letters and digits, case-folded)."""
    return tuple(w.casefold() for w in _WORD.findall(text))


def _date(op: str, value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise QuerySyntaxError(f"{op}:{value} — a date is written YYYY-MM-DD, such as {op}:2026-11-30") from exc
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_query(text: str) -> SearchQuery:
    """Parse a query; raises QuerySyntaxError naming the problem."""
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"the query is {len(text)} characters; at most {MAX_QUERY_CHARS}")
    if text.count('"') % 2:
        raise QuerySyntaxError('a quote is not closed: write phrases as "two words"')
    found: dict[str, list[object]] = {}
    terms: list[tuple[str, ...]] = []
    position = 0
    count = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:  # pragma: no cover - the pattern always advances
            raise QuerySyntaxError(f"cannot read the query at {text[position : position + 20]!r}")
        position = match.end()
        op, quoted, bare = match.group("op"), match.group("quoted"), match.group("bare")
        value = quoted if quoted is not None else bare
        if op is None and value is None:
            continue
        count += 1
        if count > MAX_TERMS:
            raise QuerySyntaxError(f"at most {MAX_TERMS} terms in a query")
        if op is None:
            assert value is not None
            phrase = words(value)
            if phrase:
                terms.append(phrase)
            continue
        name = op.lower()
        if name in _NOT_OPERATORS:  # "Re: hello", a pasted link: words, not an operator
            terms += [w for w in (words(name), words(value or "")) if w]
            continue
        if name not in OPERATORS:
            known = ", ".join(f"{o}:" for o in OPERATORS)
            raise QuerySyntaxError(f"unknown operator {op}: — the operators are {known}")
        if not value or not value.strip():
            raise QuerySyntaxError(
                f'{name}: needs a value right after the colon, such as {name}:value or {name}:"two words"'
            )
        found.setdefault(name, []).append(value.strip())
    return _build(terms, found)


def _build(terms: list[tuple[str, ...]], found: dict[str, list[object]]) -> SearchQuery:
    def one(name: str) -> str | None:
        values = found.get(name, [])
        if len(values) > 1:
            raise QuerySyntaxError(f"{name}: appears {len(values)} times; give it once")
        return str(values[0]) if values else None

    def many(name: str) -> tuple[str, ...]:
        return tuple(str(v) for v in found.get(name, []))

    has = many("has")
    for value in has:
        if value.lower() not in ("attachment", "attachments"):
            raise QuerySyntaxError(f"has:{value} — the one kind is has:attachment")
    unread: bool | None = None
    for value in many("is"):
        if value.lower() not in ("unread", "read"):
            raise QuerySyntaxError(f"is:{value} — write is:unread or is:read")
        wanted = value.lower() == "unread"
        if unread is not None and unread != wanted:
            raise QuerySyntaxError("is:unread and is:read together match nothing; give one")
        unread = wanted
    folder = one("in")
    if folder is not None and (not _FOLDER.match(folder) or ".." in folder):
        raise QuerySyntaxError(f"in:{folder} — a folder is inbox, sent, archive, trash or a folder name")
    subject = tuple(w for w in (words(v) for v in many("subject")) if w)
    if found.get("subject") and not subject:
        raise QuerySyntaxError("subject: needs a word to look for")
    before, after = one("before"), one("after")
    return SearchQuery(
        terms=tuple(terms),
        subject=subject,
        senders=tuple(v.casefold() for v in many("from")),
        recipients=tuple(v.casefold() for v in many("to")),
        has_attachment=bool(has),
        unread=unread,
        folder=folder.lower() if folder else None,
        labels=many("label"),
        before=_date("before", before) if before else None,
        after=_date("after", after) if after else None,
        thread=one("thread"),
    )
