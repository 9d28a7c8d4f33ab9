"""Errors every front door (MCP, HTTP, CLI) turns into its own kind of refusal, and Temporal's errors as them."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.errors import Door, MailgateError

__all__ = [
    "Conflict",
    "Door",
    "Forbidden",
    "InvalidInput",
    "MailgateError",
    "NotFound",
    "Unavailable",
    "rpc_error",
    "unavailable",
    "update_error",
]


class InvalidInput(MailgateError):
    http_status = 400


class NotFound(MailgateError):
    http_status = 404


class Forbidden(MailgateError):
    """The caller may not do this (a decision from someone who is not an approver)."""

    http_status = 403


class Conflict(MailgateError):
    """The request contradicts state: already decided, key reused, mode not allowed."""

    http_status = 409


class Unavailable(MailgateError):
    """Temporal or the worker cannot be reached right now; retrying later is safe."""

    http_status = 503


# --- Temporal's errors, in the words of a refusal -------------------------------------------------


def unavailable(err: RPCError) -> Unavailable:
    return Unavailable(f"Temporal did not answer: {err.message}")


def rpc_error(err: RPCError, what: str | MailgateError) -> MailgateError:
    """A failed call to Temporal: ``what`` was not found (a message, or the error to raise), or
    Temporal could not be reached."""
    if err.status == RPCStatusCode.NOT_FOUND:
        return what if isinstance(what, MailgateError) else NotFound(what)
    return unavailable(err)


def update_error(err: WorkflowUpdateFailedError) -> MailgateError:
    """An update the workflow refused: its reason is the conflict's message."""
    cause = err.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    return Conflict(message)
