"""The hottest requests, served without FastAPI's routing and dependency machinery.

`GET /certificates/{name}`, `GET /certificates/{name}/pending` and a well-formed
`POST /certificates/{name}/create` run the very handlers FastAPI would run, with the same
error bodies. Anything else goes on to FastAPI: other routes, names FastAPI routes elsewhere,
and any create body that is not a JSON object valid for the model (FastAPI then answers with
its own validation errors, the body replayed to it). The guard has already checked the token
and the api-version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from ledger.api.errors import response_for
from ledger.api.models import CertificateCreateParameters
from ledger.api.routers.certificates import create_certificate, get_certificate
from ledger.api.routers.operations import get_operation
from ledger.api.services import ApiServices, Call
from ledger.domain.context import Ctx

_GET = re.compile(r"/certificates/([0-9A-Za-z-]{1,127})(/pending)?")
_CREATE = re.compile(r"/certificates/([0-9A-Za-z-]{1,127})/create")
# Fixed paths that FastAPI routes before /certificates/{name}.
_ROUTED_ELSEWHERE = frozenset({"issuers", "contacts"})

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def _route(scope: Any) -> tuple[str, str] | None:
    """(what, name) for a request this module serves, else None."""
    method, path = scope["method"], scope["path"]
    if method == "GET":
        match = _GET.fullmatch(path)
        if match and match.group(1) not in _ROUTED_ELSEWHERE:
            return ("pending" if match.group(2) else "get"), match.group(1)
    elif method == "POST":
        match = _CREATE.fullmatch(path)
        if match and match.group(1) not in _ROUTED_ELSEWHERE:
            return "create", match.group(1)
    return None


def _is_json(scope: Any) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = bytes(value).decode("latin-1").split(";", 1)[0].strip().lower()
            return media == "application/json" or (
                media.startswith("application/") and media.endswith("+json")
            )
    return False


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _valid_create(body: bytes) -> CertificateCreateParameters | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return CertificateCreateParameters.model_validate(data)
    except ValidationError:
        return None


class FastPath:
    def __init__(self, services: ApiServices) -> None:
        self.services = services

    async def __call__(
        self, scope: Any, receive: Any, send: Any, principal: str, app: ASGIApp
    ) -> None:
        """Serve the request here if it is one of ours, else hand it to `app`."""
        found = _route(scope)
        if found is None:
            await app(scope, receive, send)
            return
        what, name = found
        call = Call(self.services, Ctx(principal, scope["state"]["request_id"]))
        handler: Callable[[], Response]
        if what == "create":
            if not _is_json(scope):
                await app(scope, receive, send)
                return
            body = await _read_body(receive)
            params = _valid_create(body)
            if params is None:
                await app(scope, _replay(body), send)
                return
            handler = partial(create_certificate, name, params, Request(scope), call)
        else:
            handler = partial(get_operation if what == "pending" else get_certificate, name, call)
        try:
            response = await anyio.to_thread.run_sync(handler)
        except Exception as exc:
            response = response_for(scope["method"], scope["path"], exc)
        await response(scope, receive, send)


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
