"""Temporal's remote codec protocol, so an authorised Temporal UI can show encrypted payloads.

POST /codec/decode (and /codec/encode) with {"payloads": [{"metadata": {k: b64}, "data": b64}]}.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from server.credentials import Secrets
from server.web.security import admin_role
from workflows.trust.codec import CodecError

MAX_BODY = 4 * 1024 * 1024


def _payloads(body: Any) -> list[Payload]:
    items = body.get("payloads") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValueError('expected {"payloads": [...]}')
    payloads = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each payload is an object")
        metadata = {str(k): base64.b64decode(v, validate=True) for k, v in (item.get("metadata") or {}).items()}
        payloads.append(Payload(metadata=metadata, data=base64.b64decode(item.get("data") or "", validate=True)))
    return payloads


def _json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def routes(codec: PayloadCodec | None, secrets: Secrets, ui_origins: set[str]) -> list[Route]:
    def cors(request: Request, response: Response) -> Response:
        origin = request.headers.get("origin")
        if origin in ui_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Headers"] = "authorization, content-type, x-namespace"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Vary"] = "Origin"
        return response

    def endpoint(
        transform: Callable[[PayloadCodec, list[Payload]], Awaitable[list[Payload]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if request.method == "OPTIONS":
                return cors(request, Response(status_code=204))
            refusal = admin_role(request, secrets)
            if refusal is not None:
                return cors(request, refusal)
            if codec is None:
                return cors(request, JSONResponse({"error": "encryption is not configured"}, status_code=404))
            raw = await request.body()
            if len(raw) > MAX_BODY:
                return cors(request, JSONResponse({"error": "body too large"}, status_code=413))
            try:
                payloads = _payloads(json.loads(raw))
                return cors(request, JSONResponse(_json(await transform(codec, payloads))))
            except (ValueError, binascii.Error, CodecError) as exc:
                return cors(request, JSONResponse({"error": str(exc)}, status_code=400))

        return handle

    return [
        Route("/codec/decode", endpoint(lambda c, p: c.decode(p)), methods=["POST", "OPTIONS"]),
        Route("/codec/encode", endpoint(lambda c, p: c.encode(p)), methods=["POST", "OPTIONS"]),
    ]
