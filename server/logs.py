"""Log output of mailgate processes: text for people, or one JSON object per line for machines
(MAILGATE_LOG_FORMAT=json), each line about a send carrying its ``send_id``."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from temporalio import activity, workflow

from server.settings import Settings

# The send workflow's id is the send id; lines from its activities name it as their workflow.
SEND_WORKFLOW = "SendEmailWorkflow"


def send_id_of(record: logging.LogRecord) -> str | None:
    given = getattr(record, "send_id", None)
    if isinstance(given, str):
        return given
    for key, type_key in (("temporal_workflow", "workflow_type"), ("temporal_activity", "workflow_type")):
        info = getattr(record, key, None)
        if isinstance(info, dict) and info.get(type_key) == SEND_WORKFLOW:
            workflow_id = info.get("workflow_id")
            return workflow_id if isinstance(workflow_id, str) else None
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        send_id = send_id_of(record)
        if send_id is not None:
            line["send_id"] = send_id
        for key in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, key, None)
            if isinstance(info, dict):
                line[key.removeprefix("temporal_")] = {k: v for k, v in info.items() if isinstance(v, str | int)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class JsonLines(io.TextIOBase):
    """stderr for JSON logs: what the process prints there (its banner, click's messages, a
    traceback at exit) becomes one JSON record per line, so a log pipeline parses every line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending = ""
        self.formatter = JsonFormatter()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                record = logging.LogRecord("mailgate.console", logging.INFO, "", 0, line, None, None)
                self.stream.write(self.formatter.format(record) + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def configure_logging(settings: Settings) -> None:
    """Every line goes to stderr: stdout may belong to the MCP protocol."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
        sys.stderr = JsonLines(sys.stderr)
        # The adapters would also append the workflow's details to the message text; in JSON they
        # are fields of their own.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # As basicConfig: a root logger that has handlers already (pytest's) keeps them.
    logging.basicConfig(handlers=[handler], level=settings.log_level.upper())
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    if settings.log_format == "json":
        # What workflows and activities say about a send is worth a line when machines read it.
        for name in ("temporalio.workflow", "temporalio.activity"):
            logging.getLogger(name).setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpx2"):  # a line per request of `mailgate mcp` relaying to MAILGATE_URL
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's loggers have handlers of their own; make them use ours so every line is JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
