"""Backup and restore of a certificate with its whole history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.routers import Name
from ledger.api.services import Call, call_of

router = APIRouter(tags=["backup"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


@router.post("/certificates/restore", response_model=models.CertificateBundle)
def restore_certificate(body: models.CertificateRestoreParameters, call: CallDep) -> Response:
    """Restore a backup under its name (free, or purged); its history is replayed."""
    blob = render.unb64(body.value, "value")
    cert = call.ledger.restore_certificate(call.ctx, blob)
    return render.kv(call.render(call.reads().certificate(cert.name)))


@router.post("/certificates/{name}/backup", response_model=models.BackupCertificateResult)
def backup_certificate(name: Name, call: CallDep) -> Response:
    """An encrypted, authenticated blob of the certificate's history and keys."""
    blob = call.ledger.backup_certificate(call.ctx, name)
    return render.kv({"value": render.b64url(blob)})
