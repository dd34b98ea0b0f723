"""Before any route: the bearer token, the api-version, and the request id.

A pure ASGI middleware, so that the Azure SDK's first request (sent without a
token, and without its body) always gets Key Vault's 401 challenge, whatever
the route would have made of the body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import parse_qs

from ledger.api.errors import JSON, error_body
from ledger.tokens import TokenAuthority, TokenError

if TYPE_CHECKING:
    from ledger.api.fast import FastPath

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ApiVersion = Literal["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"]
API_VERSIONS: tuple[str, ...] = get_args(ApiVersion)
AUTHORITY = "https://login.microsoftonline.com/common"
RESOURCE = "https://vault.azure.net"
CHALLENGE = f'Bearer authorization="{AUTHORITY}", resource="{RESOURCE}"'
OPEN_PATHS = frozenset({"/openapi.json", "/docs", "/healthz"})
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class Guard:
    """Authenticates, checks api-version and tags the request; the principal goes in state."""

    def __init__(self, app: ASGIApp, tokens: TokenAuthority, fast: FastPath | None = None) -> None:
        self.app = app
        self.tokens = tokens
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id = _header(scope, b"x-ms-client-request-id")
        if client_id is not None and not _REQUEST_ID_RE.match(client_id):
            client_id = None
        request_id = client_id or str(uuid.uuid4())
        extra = [(b"x-ms-request-id", request_id.encode())]
        if client_id:
            extra.append((b"x-ms-client-request-id", client_id.encode()))

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, tagged)
            return
        principal, problem = self._authenticate(scope)
        if principal is None:
            challenge = CHALLENGE if problem is None else f'{CHALLENGE}, error="invalid_token"'
            message = problem or "the request carries no bearer token"
            await _reply(tagged, 401, "Unauthorized", message, [(b"www-authenticate", challenge)])
            return
        version_problem = _check_api_version(scope)
        if version_problem:
            await _reply(tagged, 400, "BadParameter", version_problem, [])
            return
        state["principal"] = principal
        if self.fast is not None:  # the hottest routes, else FastAPI
            await self.fast(scope, receive, tagged, principal, self.app)
            return
        await self.app(scope, receive, tagged)

    def _authenticate(self, scope: Scope) -> tuple[str | None, str | None]:
        header = _header(scope, b"authorization")
        if not header:
            return None, None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "the Authorization header is not a bearer token"
        try:
            return self.tokens.verify(token.strip()).principal, None
        except TokenError as exc:
            return None, f"the bearer token is not valid: {exc}"


def _check_api_version(scope: Scope) -> str | None:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("api-version")
    if not values:
        return "the api-version query parameter is required"
    if values[-1] not in API_VERSIONS:
        return (
            f"the specified version ({values[-1][:40]}) is not recognized; "
            f"supported versions: {', '.join(API_VERSIONS)}"
        )
    return None


async def _reply(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, str]]
) -> None:
    body = error_body(code, message)
    raw = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *[(k, v.encode("latin-1")) for k, v in headers],
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
