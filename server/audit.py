"""The audit log, read from Temporal: mailbox workflows' own records plus every send's events.

Nothing is copied into a second store. Visibility lists running sends first (newest start
first), then closed ones by close time, newest first; a send's events all happen before it
closes, so the scan stops as soon as older sends cannot hold a newer event than the page needs.
"""

from __future__ import annotations

import heapq
import json
from datetime import datetime

from pydantic import BaseModel

from server.errors import InvalidInput
from server.mailboxes import Mailboxes
from server.sends import Sends
from server.validation import check_limit, parse_mailbox
from workflows import ids
from workflows.models import AuditEvent
from workflows.temporal import MAILBOX

MAX_LIMIT = 200


class AuditPage(BaseModel):
    events: list[AuditEvent]
    next_cursor: str | None = None


Key = tuple[datetime, str, str, str, str, str]


def _key(event: AuditEvent) -> Key:
    """A total order, so events that share a timestamp still page without gaps or repeats."""
    return (event.at, event.mailbox or "", event.send_id or "", event.kind, event.actor, event.detail)


class _Newest:
    """The `limit` newest events that come after the cursor."""

    def __init__(self, limit: int, before: Key | None) -> None:
        self.limit = limit
        self.before = before
        self._heap: list[tuple[Key, AuditEvent]] = []

    def add(self, events: tuple[AuditEvent, ...] | list[AuditEvent]) -> None:
        for event in events:
            key = _key(event)
            if self.before is not None and key >= self.before:
                continue
            if len(self._heap) < self.limit:
                heapq.heappush(self._heap, (key, event))
            elif key > self._heap[0][0]:
                heapq.heapreplace(self._heap, (key, event))

    def cutoff(self) -> datetime | None:
        """Events older than this cannot make the page any more."""
        return self._heap[0][0][0] if len(self._heap) >= self.limit else None

    def page(self) -> AuditPage:
        ordered = sorted(self._heap, key=lambda item: item[0], reverse=True)
        cursor = None
        if len(ordered) >= self.limit:
            last = ordered[-1][0]
            cursor = json.dumps([last[0].isoformat(), *last[1:]]).encode().hex()
        return AuditPage(events=[event for _, event in ordered], next_cursor=cursor)


def _before(cursor: str | None) -> Key | None:
    if not cursor:
        return None
    try:
        at, *rest = json.loads(bytes.fromhex(cursor))
        return (datetime.fromisoformat(at), *map(str, rest))  # type: ignore[return-value]
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor: not a cursor from a previous get_audit_log") from exc


async def audit_log(
    mailboxes: Mailboxes,
    sends: Sends,
    *,
    mailbox: str | None = None,
    send_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> AuditPage:
    check_limit(limit, MAX_LIMIT)
    newest = _Newest(limit, _before(cursor))
    if send_id is not None:
        newest.add((await sends.status(send_id)).events)
        return newest.page()

    addresses = [parse_mailbox(mailbox)] if mailbox else [m.address for m in await mailboxes.all()]
    for address in addresses:
        newest.add((await mailboxes.state(address)).audit)

    query = sends.index.scope("SendEmailWorkflow")
    if mailbox:
        query += f" AND {MAILBOX.name} = '{ids.mailbox_key(addresses[0])}'"
    async for execution in sends.client.list_workflows(query, page_size=100):
        cutoff = newest.cutoff()
        last_possible = execution.close_time or execution.start_time
        if cutoff is not None and execution.close_time is None and execution.start_time < cutoff:
            # Running sends come newest-start first; the rest of the running ones are older.
            continue
        if cutoff is not None and execution.close_time is not None and last_possible < cutoff:
            break
        newest.add((await sends.status(execution.id)).events)
    return newest.page()
