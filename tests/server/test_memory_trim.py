"""serve and `mailgate worker` hand freed memory back to the OS once each burst of work is over."""

from __future__ import annotations

from server.memory_trim import BURST, CHECK_EVERY, QUIET, TrimAfterBursts, malloc_trim

BUSY = CHECK_EVERY  # a whole core over the interval
IDLE = QUIET * CHECK_EVERY / 10


def test_a_quiet_interval_after_a_burst_trims_once() -> None:
    policy = TrimAfterBursts()
    assert [policy.quiet_now(used, CHECK_EVERY) for used in (BUSY, BUSY, IDLE, IDLE, IDLE)] == [
        False,
        False,
        True,
        False,
        False,
    ]


def test_nothing_is_trimmed_while_busy_nor_after_too_little_work() -> None:
    policy = TrimAfterBursts()
    assert not any(policy.quiet_now(BUSY, CHECK_EVERY) for _ in range(10))
    idle = TrimAfterBursts()
    assert not any(idle.quiet_now(used, CHECK_EVERY) for used in (BURST / 4, IDLE, IDLE))


def test_work_in_small_pieces_adds_up_to_a_burst() -> None:
    policy = TrimAfterBursts()
    piece = QUIET * CHECK_EVERY / 2  # each interval quiet, together a burst
    pieces = int(BURST / piece) + 1
    assert [policy.quiet_now(piece, CHECK_EVERY) for _ in range(pieces)].count(True) == 1


def test_glibc_trims_here() -> None:
    trim = malloc_trim()
    assert trim is not None  # Debian's glibc, as in CI and the container image
    assert trim(0) in (0, 1)
