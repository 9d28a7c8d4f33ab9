"""Reading request bodies with a size limit, before anything parses them."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

MIB = 1024 * 1024


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes")
        self.limit = limit


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body; TooLarge as soon as it passes ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limit: int = 2 * MIB) -> FormData:
    """An urlencoded form (every dashboard form is one; nothing here uploads files)."""
    body = await read_limited(request, limit)
    pairs: list[tuple[str, str | UploadFile]] = []
    try:
        pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        pairs = []  # a form that cannot be read is an empty one: its CSRF check then fails
    return FormData(pairs)
