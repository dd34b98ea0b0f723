"""Key Vault's error body, `{"error": {"code", "message", "innererror"}}`, for every failure."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.domain.errors import Forbidden, LedgerError, NotFound
from ledger.domain.policy import PolicyError
from ledger.keys.custody import CustodyError

log = logging.getLogger("certledger.api")

STATUS = {
    "BadParameter": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "CertificateNotFound": 404,
    "PendingCertificateNotFound": 404,
    "CertificateIssuerNotFound": 404,
    "Conflict": 409,
}
HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge", 415: "BadParameter"}
JSON = "application/json; charset=utf-8"


def error_body(code: str, message: str, inner: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return json.dumps({"error": error}).encode()


def error_response(
    status: int, code: str, message: str, inner: str | None = None, **headers: str
) -> Response:
    return Response(error_body(code, message, inner), status, headers, media_type=JSON)


def _resource_code(path: str, exc: LedgerError) -> str:
    """Key Vault names a missing key or secret as such, not as a certificate."""
    if isinstance(exc, NotFound) and exc.code == "CertificateNotFound":
        if path.startswith("/keys/"):
            return "KeyNotFound"
        if path.startswith("/secrets/"):
            return "SecretNotFound"
    return exc.code


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def ledger_error_response(path: str, exc: LedgerError) -> Response:
    status = 403 if isinstance(exc, Forbidden) else STATUS.get(exc.code, 400)
    if isinstance(exc, NotFound):
        status = 404
    return error_response(status, _resource_code(path, exc), exc.message, exc.inner_code)


def response_for(method: str, path: str, exc: Exception) -> Response:
    """The error response for what a handler raised (also outside FastAPI's routing)."""
    if isinstance(exc, LedgerError):
        return ledger_error_response(path, exc)
    if isinstance(exc, PolicyError):
        return error_response(400, "BadParameter", f"invalid policy: {exc}")
    if isinstance(exc, CustodyError | ValueError):
        return error_response(400, "BadParameter", str(exc) or "invalid value")
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return error_response(500, "InternalServerError", "the server met an unexpected error")


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> Response:
        return ledger_error_response(request.url.path, exc)

    @app.exception_handler(PolicyError)
    async def policy_error(request: Request, exc: PolicyError) -> Response:
        return response_for(request.method, request.url.path, exc)

    @app.exception_handler(CustodyError)
    async def custody_error(request: Request, exc: CustodyError) -> Response:
        return response_for(request.method, request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:5]:
            message = str(err.get("msg", "invalid"))
            problems.append(f"{_field(tuple(err.get('loc', ())))}: {message}")
        return error_response(400, "BadParameter", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "BadParameter")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> Response:
        return error_response(400, "BadParameter", str(exc) or "invalid value")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "InternalServerError", "the server met an unexpected error")
