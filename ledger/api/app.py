"""The FastAPI application: routers in Key Vault's precedence, errors, the guard."""

from __future__ import annotations

from fastapi import FastAPI

from ledger.api import errors
from ledger.api.guard import Guard
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
    app.add_middleware(Guard, tokens=tokens)
    return app
