"""Key Vault JSON for the results of commands, and a few shared encodings."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from fastapi.responses import Response

from ledger.domain.certificate import Certificate
from ledger.domain.errors import BadParameter

JSON = "application/json; charset=utf-8"
_B64_RE = re.compile(r"^[A-Za-z0-9+/_=\-\s]*$")


def kv(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response, serialised once (no re-validation)."""
    return Response(json.dumps(body), status, headers, media_type=JSON)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, with or without padding."""
    if not _B64_RE.match(text):
        raise BadParameter(f"{what}: not base64")
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except binascii.Error as exc:
        raise BadParameter(f"{what}: not base64 ({exc})") from exc


def operation(base: str, cert: Certificate) -> dict[str, Any]:
    """CertificateOperation of the aggregate a command just saved."""
    op = cert.require_operation()
    pending = cert.versions.get(op.version)
    body: dict[str, Any] = {
        "id": f"{base}/certificates/{cert.name}/pending",
        "issuer": {"name": op.issuer_name},
        "csr": pending.csr_der if pending is not None else None,
        "cancellation_requested": op.cancellation_requested,
        "status": op.status,
        "status_details": op.status_details,
        "target": f"{base}/certificates/{cert.name}",
        "request_id": op.request_id,
    }
    if op.error_code:
        body["error"] = {"code": op.error_code, "message": op.error_message}
    return {k: v for k, v in body.items() if v is not None}
