"""How often a front door counts a mailbox's waiting sends: not for every send when far below the cap.

Counting runs a visibility query (a round trip, and a scan that grows with the backlog). The count
is only as exact as visibility, which lags a burst anyway; so while a recent count plus the sends
this front door started since stays under half the cap, a new send is let through without
counting again. Near the cap, every send counts.
"""

from __future__ import annotations

import time

RECOUNT_SECONDS = 1.0


class PendingTally:
    def __init__(self, recount_seconds: float = RECOUNT_SECONDS) -> None:
        self._recount = recount_seconds
        self._known: dict[str, tuple[float, int]] = {}  # mailbox -> (counted at, waiting + started since)

    def clearly_under(self, mailbox: str, cap: int) -> bool:
        """True (and one more send tallied) when there is no need to count again for this send."""
        known = self._known.get(mailbox)
        if known is None or time.monotonic() - known[0] >= self._recount or known[1] >= cap // 2:
            return False
        self._known[mailbox] = (known[0], known[1] + 1)
        return True

    def counted(self, mailbox: str, waiting: int) -> None:
        """Visibility counted ``waiting``; the send being checked now is one more."""
        self._known[mailbox] = (time.monotonic(), waiting + 1)
