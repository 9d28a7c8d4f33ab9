"""Backoff for failed credentials, per client address: bearer tokens and dashboard sign-in.

A few mistakes cost nothing; after that each further failure from the same address doubles
the wait before the next attempt is even checked (1 s, 2 s, 4 s, ... up to 5 minutes), so
guessing a token runs at a handful of tries per hour instead of hundreds per second. A valid
token does not clear the count: the agent holds a real token and must not use it to reset
its guesses at the admin token. Failures are forgotten after 15 quiet minutes.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

FREE_FAILURES = 10
FIRST_DELAY = 1.0
MAX_DELAY = 300.0
FORGET_AFTER = 900.0
MAX_ADDRESSES = 10_000


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # address -> (failures, time of the last failure); oldest first, so memory stays bounded.
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait(self, address: str) -> float:
        """Seconds this address must wait before a credential it sends is checked (0: now)."""
        entry = self._current(address)
        if entry is None or entry[0] < FREE_FAILURES:
            return 0.0
        count, last = entry
        delay = min(FIRST_DELAY * 2.0 ** (count - FREE_FAILURES), MAX_DELAY)
        return max(0.0, last + delay - self._clock())

    def failed(self, address: str) -> None:
        entry = self._current(address)
        self._failures[address] = ((entry[0] if entry else 0) + 1, self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def _current(self, address: str) -> tuple[int, float] | None:
        entry = self._failures.get(address)
        if entry is not None and self._clock() - entry[1] > FORGET_AFTER:
            del self._failures[address]
            return None
        return entry


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def throttle_of(scope: Scope) -> Throttle:
    """The one throttle of the app serving this request, shared by every door that checks a credential."""
    state = scope["app"].state
    throttle: Throttle | None = getattr(state, "credential_throttle", None)
    if throttle is None:
        throttle = state.credential_throttle = Throttle()
    return throttle


def too_many(wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    return JSONResponse(
        {"error": f"too many failed attempts from your address; try again in {seconds} s"},
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


def refusal_for(request: Request) -> Response | None:
    """429 when this client must wait before its credential is checked; None to go on."""
    wait = throttle_of(request.scope).wait(client_address(request.scope))
    return too_many(wait) if wait > 0 else None
