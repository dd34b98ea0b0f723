"""The hottest reads, served without FastAPI's routing and dependency machinery.

`GET /certificates/{name}` and `GET /certificates/{name}/pending` run the very handlers
FastAPI would run, with the same error bodies; anything else (and any name FastAPI routes
elsewhere) goes on to FastAPI. The guard has already checked the token and api-version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi.responses import Response

from ledger.api.errors import response_for
from ledger.api.routers.certificates import get_certificate
from ledger.api.routers.operations import get_operation
from ledger.api.services import ApiServices, Call
from ledger.domain.context import Ctx

_GET = re.compile(r"/certificates/([0-9A-Za-z-]{1,127})(/pending)?")
# Fixed paths that FastAPI routes before /certificates/{name}.
_ROUTED_ELSEWHERE = frozenset({"issuers", "contacts"})

Handler = Callable[[str, Call], Response]


class FastPath:
    def __init__(self, services: ApiServices) -> None:
        self.services = services

    def handler(self, scope: dict[str, Any] | Any) -> tuple[Handler, str] | None:
        if scope["method"] != "GET":
            return None
        match = _GET.fullmatch(scope["path"])
        if match is None or match.group(1) in _ROUTED_ELSEWHERE:
            return None
        return (get_operation if match.group(2) else get_certificate), match.group(1)

    async def serve(
        self, scope: Any, receive: Any, send: Any, found: tuple[Handler, str], principal: str
    ) -> None:
        handler, name = found
        call = Call(self.services, Ctx(principal, scope["state"]["request_id"]))
        try:
            response = await anyio.to_thread.run_sync(handler, name, call)
        except Exception as exc:
            response = response_for(scope["method"], scope["path"], exc)
        await response(scope, receive, send)
