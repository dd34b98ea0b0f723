"""One router per Key Vault resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api.guard import ApiVersion

NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="1 to 127 letters, digits, hyphens.")]
_bearer = HTTPBearer(auto_error=False, description="A token from `certledger token issue`.")


def documented(
    api_version: Annotated[ApiVersion, Query(alias="api-version")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Describes what the guard middleware already checked (api-version and the token)."""


COMMON = [Depends(documented)]
