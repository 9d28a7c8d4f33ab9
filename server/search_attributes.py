"""mailgate's search attributes on a namespace: register the missing ones, wait until they count.

Apart from server/workers.py so that a front door (server/stack.py) can use it without loading
the worker's code.
"""

from __future__ import annotations

import asyncio
import sys
import time

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from server.settings import SettingsError
from workflows.temporal import SEARCH_ATTRIBUTES

KINDS = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}


async def add_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the search attributes the namespace lacks; returns the names it added."""
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server cannot list; adding is idempotent there.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {name: kind for name, kind in SEARCH_ATTRIBUTES.items() if name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace, search_attributes={name: KINDS[kind] for name, kind in missing.items()}
            )
        )
    return sorted(missing)


async def usable(client: Client, names: list[str]) -> bool:
    """Whether the server accepts the attributes in a query yet (it refuses unknown ones)."""
    try:
        await client.count_workflows(" AND ".join(f"{name} = ''" for name in names))
    except RPCError as err:
        if err.status != RPCStatusCode.INVALID_ARGUMENT:
            raise
        return False
    return True


async def ensure_search_attributes(
    client: Client, namespace: str, log_file: str, timeout: float = 30.0, interval: float = 0.2
) -> list[str]:
    """On a cluster mailgate owns (the embedded dev server): add what the namespace lacks, then
    wait until the server takes the added ones. `start-dev --search-attribute` registers them only
    when it creates the namespace, so a data dir from a release before an attribute was added
    lacks it, and every upsert of it would fail the send's workflow task. Nothing missing: one
    list call."""
    added = await add_search_attributes(client, namespace)
    if not added:
        return added
    print(f"mailgate: registered search attributes {', '.join(added)} in namespace {namespace}", file=sys.stderr)
    # The server caches the namespace's attributes (FORCE_SEARCH_ATTRIBUTE_REFRESH off, in
    # server/embedded.py): new ones count after its next refresh, a few seconds.
    deadline = time.monotonic() + timeout
    while not await usable(client, added):
        if time.monotonic() > deadline:
            raise SettingsError(
                f"the Temporal dev server did not accept the search attributes {', '.join(added)} within "
                f"{timeout:.0f}s of registering them in namespace {namespace}; see {log_file}"
            )
        await asyncio.sleep(interval)
    return added
