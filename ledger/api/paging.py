"""Key Vault paging: `maxresults` (1 to 25) and a `nextLink` carrying `$skiptoken`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from ledger.domain.errors import BadParameter

MAX_RESULTS = 25
T = TypeVar("T")


def page_size(maxresults: int | None) -> int:
    if maxresults is None:
        return MAX_RESULTS
    if not 1 <= maxresults <= MAX_RESULTS:
        raise BadParameter(f"maxresults must be 1 to {MAX_RESULTS}, not {maxresults}")
    return maxresults


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).rstrip(b"=").decode("ascii")


def decode_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("$skiptoken is not a token this vault issued") from None


def next_link(request: Request, base: str, marker: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "$skiptoken"}
    params["$skiptoken"] = encode_token(marker)
    return f"{base}{request.url.path}?{urlencode(params)}"


def offset_page(
    request: Request, base: str, items: Sequence[T], maxresults: int | None, token: str | None
) -> dict[str, Any]:
    """One page of an in-memory list; the token is the offset of the next page."""
    size = page_size(maxresults)
    marker = decode_token(token)
    if marker and not marker.isdigit():
        raise BadParameter("$skiptoken is not a token this vault issued")
    start = int(marker or 0)
    chunk = list(items[start : start + size])
    body: dict[str, Any] = {"value": chunk, "nextLink": None}
    if start + size < len(items):
        body["nextLink"] = next_link(request, base, str(start + size))
    return body
