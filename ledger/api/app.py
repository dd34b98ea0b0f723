"""The FastAPI application: routers in Key Vault's precedence, errors, the guard."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ledger.api import errors
from ledger.api.fast import FastPath
from ledger.api.guard import API_VERSIONS, Guard
from ledger.api.routers import backup, certificates, contacts, deleted, issuers, managed, operations
from ledger.api.services import ApiServices
from ledger.tokens import TokenAuthority

DESCRIPTION = """\
Azure Key Vault's certificate REST API, served by certledger. Every request needs
`api-version` (7.0 to 7.6, 2025-07-01 or 2026-04-01) and a bearer token from
`certledger token issue`; without a token the answer is 401 with Key Vault's
challenge. The managed key and secret of each certificate are read-only.
"""


def create_app(services: ApiServices, tokens: TokenAuthority) -> FastAPI:
    app = FastAPI(
        title="certledger",
        version="7.6",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.services = services
    # Fixed paths (issuers, contacts, restore, pending) before /certificates/{name}/{version}.
    for module in (issuers, contacts, backup, operations, certificates, deleted, managed):
        app.include_router(module.router)
    errors.install(app)
    app.add_middleware(Guard, tokens=tokens, fast=FastPath(services))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the guard's api-version and bearer token on every operation."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        doc.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from `certledger token issue`.",
            }
        }
        api_version = {
            "name": "api-version",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "enum": list(API_VERSIONS)},
        }
        for operations in doc["paths"].values():
            for operation in operations.values():
                operation["parameters"] = [api_version, *operation.get("parameters", [])]
                operation["security"] = [{"bearer": []}]
                operation["responses"].pop("422", None)
        app.openapi_schema = doc
    return app.openapi_schema
