"""One router per Key Vault resource."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ApiVersion = Literal["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"]
_bearer = HTTPBearer(auto_error=False, description="A token from `certledger token issue`.")


def documented(
    api_version: Annotated[ApiVersion, Query(alias="api-version")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Describes what the guard middleware already checked (api-version and the token)."""


COMMON = [Depends(documented)]
