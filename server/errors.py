"""Errors every front door (MCP, HTTP, CLI) turns into its own kind of refusal."""

from __future__ import annotations

from workflows.errors import Door, MailgateError

__all__ = ["Conflict", "Door", "Forbidden", "InvalidInput", "MailgateError", "NotFound", "Unavailable"]


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
