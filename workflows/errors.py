"""The root of mailgate's refusals, here so the worker side (providers) can raise them too; the
front doors (server/errors.py) add their kinds and turn each into their own kind of refusal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Door = Literal["mcp", "cli", "api"]


class MailgateError(Exception):
    """A refusal with a message that tells the caller what to do next.

    The next step may depend on where the caller stands: an agent is pointed at a tool, a
    person at the terminal at a command, a program at an endpoint (``next_steps`` by door).
    """

    http_status = 400

    def __init__(self, message: str, *, next_steps: Mapping[Door, str] | None = None) -> None:
        super().__init__(message)
        self.next_steps = dict(next_steps or {})

    def at(self, door: Door) -> str:
        """The message with the next step in the words of the door that shows it."""
        step = self.next_steps.get(door)
        return f"{self}; {step}" if step else str(self)
