"""The most a Python HTTPS server can answer for the issuance protocol, doing no work.

An ASGI app for uvicorn (the server `certledger serve` runs on) that answers the three
requests of an issuance exactly as the benchmark expects them — create (202, inProgress),
pending (completed), get (a certificate) — from canned bodies: no key, no signature, no
event, no database. `bench_http.py` drives it with the same clients as certledger and
cfssl, so its rate is a ceiling for any issuance served by this stack on this machine.

    uvicorn --app-dir scripts http_ceiling:app --ssl-keyfile K --ssl-certfile C
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]

CER = "MIIB" + "A" * 600  # the size of a P-256 certificate's base64 DER
_BODIES = {
    "create": (202, {"id": "pending", "status": "inProgress", "csr": "MIIB" + "A" * 300}),
    "pending": (200, {"id": "pending", "status": "completed"}),
    "get": (200, {"id": "certificate", "cer": CER, "attributes": {"enabled": True}}),
}
ENCODED = {k: (status, json.dumps(body).encode()) for k, (status, body) in _BODIES.items()}


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # the request body is read, as a real server must
        message = await receive()
        more = bool(message.get("more_body"))
    path: str = scope["path"]
    kind = (
        "create" if path.endswith("/create") else "pending" if path.endswith("/pending") else "get"
    )
    status, body = ENCODED[kind]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
