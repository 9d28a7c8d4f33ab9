"""Threading: Message-ID references, reply subjects, and Jamie Zawinski's threading algorithm.

The sandbox groups messages into threads as they arrive (connected components of the
reference graph, which are exactly JWZ's root sets); `order_thread` then lays one thread out
as a conversation tree. Both work from headers alone, whichever order messages came in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

MAX_REFERENCES = 100
# Outgoing References are trimmed like mail clients do: the root and the most recent ids.
KEEP_REFERENCES = 20
# Ordering a thread reads the newest KEEP_REFERENCES ids of each message and walks at most
# MAX_THREAD_DEPTH parents per link: a crafted chain of References cannot make it quadratic.
MAX_THREAD_DEPTH = 200
_MSG_ID = re.compile(r"<([^<>\s]{1,900})>")
_ID_TEXT = re.compile(r"[\x21-\x7e]+")
# "Re:", "RE :", "Re[2]:", "Re(3):", and the common translations Aw/Sv/Antw.
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|vs|ref)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.IGNORECASE)
_WS = re.compile(r"\s+")


def message_ids(value: str | None, limit: int = MAX_REFERENCES) -> list[str]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References header, in order, deduplicated.

    Only printable ASCII ids survive, so nothing read here can put a line break or a space
    into a header of mail that mailgate writes.
    """
    if not value:
        return []
    found: dict[str, None] = {}  # ordered and deduplicated in one pass (a list's `in` was quadratic)
    for match in _MSG_ID.finditer(value):
        token = match.group(1)
        if _ID_TEXT.fullmatch(token) and "@" in token:
            found[f"<{token}>"] = None
    if not found:
        # Some clients write the id without angle brackets.
        bare = value.strip()
        if _ID_TEXT.fullmatch(bare) and "@" in bare and "<" not in bare and ">" not in bare and len(bare) <= 900:
            found[f"<{bare}>"] = None
    ids = list(found)
    return ids[-limit:] if len(ids) > limit else ids


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX.match(subject))


def base_subject(subject: str) -> str:
    """The subject without reply prefixes, whitespace collapsed, for comparing threads."""
    return _WS.sub(" ", _REPLY_PREFIX.sub("", subject)).strip()


def reply_subject(subject: str) -> str:
    """Exactly one ``Re:`` in front: never ``Re: Re:``."""
    base = _WS.sub(" ", _REPLY_PREFIX.sub("", subject)).strip()
    return f"Re: {base}" if base else "Re:"


def reply_references(references: Sequence[str], in_reply_to: str, message_id: str) -> tuple[str, ...]:
    """RFC 5322 section 3.6.4: the parent's References (or its In-Reply-To), then the parent's id."""
    chain = list(references) or ([in_reply_to] if in_reply_to else [])
    chain = [ident for ident in chain if ident != message_id] + [message_id]
    if len(chain) > KEEP_REFERENCES:
        chain = chain[:1] + chain[-(KEEP_REFERENCES - 1) :]
    return tuple(chain)


@dataclass(frozen=True)
class ThreadItem:
    """What ordering needs of one message."""

    key: str  # the caller's id for the message
    message_id: str
    parent_ids: tuple[str, ...]  # References then In-Reply-To, oldest first
    date: datetime


@dataclass
class _Container:
    ident: str
    item: ThreadItem | None = None
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)

    def descends_from(self, other: _Container) -> bool:
        """Is this container ``other`` or below it? Walks up, so it costs the depth, not the subtree.

        Deeper than `MAX_THREAD_DEPTH` counts as yes: the link that asked is refused, as for a cycle.
        """
        node: _Container | None = self
        for _ in range(MAX_THREAD_DEPTH):
            if node is None:
                return False
            if node is other:
                return True
            node = node.parent
        return True


def _link(parent: _Container, child: _Container) -> None:
    if child.parent is not None or parent.descends_from(child):
        return  # already placed, or the link would make a cycle
    child.parent = parent
    parent.children.append(child)


@dataclass(frozen=True)
class Placed:
    key: str
    depth: int
    parent_key: str | None


def order_thread(items: Iterable[ThreadItem]) -> list[Placed]:
    """JWZ steps 1-4 over one thread: a depth-first conversation, siblings by date.

    Missing parents stay as empty containers (their children keep their depth), cycles in
    broken References are refused link by link, and duplicate Message-IDs keep the first.
    """
    table: dict[str, _Container] = {}

    def container(ident: str) -> _Container:
        node = table.get(ident)
        if node is None:
            node = table[ident] = _Container(ident)
        return node

    items = list(items)
    for n, item in enumerate(items):
        ident = item.message_id or f"<no-id-{n}@mailgate>"
        node = container(ident)
        if node.item is not None:
            node = container(f"<duplicate-{n}@mailgate>")
        node.item = item
        previous: _Container | None = None
        for ref in item.parent_ids[-KEEP_REFERENCES:]:
            if ref == ident:
                continue
            ref_node = container(ref)
            if previous is not None and ref_node.parent is None:
                _link(previous, ref_node)
            previous = ref_node
        if previous is not None and node.parent is not previous:
            # The message's own References win over a parent guessed from another message's.
            if node.parent is not None and not previous.descends_from(node):
                node.parent.children.remove(node)
                node.parent = None
            _link(previous, node)

    roots = [node for node in table.values() if node.parent is None and (node.item or node.children)]
    # Each subtree's earliest date, computed once (children before parents).
    earliest: dict[int, datetime] = {}
    order: list[_Container] = []
    pending = list(roots)
    while pending:
        node = pending.pop()
        order.append(node)
        pending.extend(node.children)
    for node in reversed(order):
        dates = [earliest[id(c)] for c in node.children if id(c) in earliest]
        if node.item is not None:
            dates.append(node.item.date)
        if dates:
            earliest[id(node)] = min(dates)

    def first_date(node: _Container) -> datetime:
        return earliest[id(node)]

    placed: list[Placed] = []
    stack: list[tuple[_Container, int, str | None]] = [
        (root, 0, None) for root in sorted(roots, key=first_date, reverse=True)
    ]
    while stack:
        node, depth, parent_key = stack.pop()
        key = parent_key
        if node.item is not None:
            placed.append(Placed(node.item.key, depth, parent_key))
            key = node.item.key
        children = [c for c in node.children if id(c) in earliest]
        nested = depth + 1 if node.item is not None else depth
        stack.extend((child, nested, key) for child in sorted(children, key=first_date, reverse=True))
    return placed
