"""What runs for a data dir: `serve` and `mcp` write it, every other command reads it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from server.embedded import pid_alive
from server.settings import Settings


class StackInfo(BaseModel):
    pid: int
    http_url: str
    temporal_address: str
    temporal_namespace: str = "default"
    task_queue: str = "mailgate"
    temporal_ui_url: str | None = None
    smtp_port: int | None = None


def stack_file(data_dir: Path) -> Path:
    return data_dir / "stack.json"


def running_stack(data_dir: Path) -> StackInfo | None:
    """The stack serving this data dir, if its process is alive."""
    try:
        info = StackInfo.model_validate_json(stack_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return info if info.pid != os.getpid() and pid_alive(info.pid) else None


def attach(settings: Settings) -> Settings:
    """Settings that reach the stack running for the data dir: its Temporal, namespace and queue,
    unless the caller set them explicitly."""
    info = running_stack(settings.data_dir)
    if info is None:
        return settings
    update: dict[str, object] = {}
    if settings.temporal_address is None:
        update["temporal_address"] = info.temporal_address
    if "temporal_namespace" not in settings.model_fields_set:
        update["temporal_namespace"] = info.temporal_namespace
    if "task_queue" not in settings.model_fields_set:
        update["task_queue"] = info.task_queue
    if "temporal_ui_url" not in settings.model_fields_set and info.temporal_ui_url:
        update["temporal_ui_url"] = info.temporal_ui_url
    return settings.model_copy(update=update)
