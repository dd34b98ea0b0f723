"""One router per Key Vault resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="1 to 127 letters, digits, hyphens.")]
# The guard middleware checks api-version and the token before any route runs; the
# OpenAPI document describes both on every operation (see ledger/api/app.py).
