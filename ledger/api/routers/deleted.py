"""Deleted certificates: get, list, recover, purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.paging import offset_page
from ledger.api.routers import Name
from ledger.api.services import Call, call_of

router = APIRouter(tags=["deleted certificates"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


@router.get("/deletedcertificates", response_model=models.DeletedCertificateListResult)
def list_deleted(
    request: Request,
    call: CallDep,
    maxresults: Annotated[int | None, Query()] = None,
    include_pending: Annotated[bool | None, Query(alias="includePending")] = None,
    skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
) -> Response:
    """Certificates deleted and not yet purged."""
    call.authorize("list", "deletedcertificates")
    items = call.reads().list_deleted()
    return render.kv(call.render(offset_page(request, call.base, items, maxresults, skiptoken)))


@router.get("/deletedcertificates/{name}", response_model=models.DeletedCertificateBundle)
def get_deleted(name: Name, call: CallDep) -> Response:
    call.authorize("get", f"deletedcertificates/{name}")
    return render.kv(call.render(call.reads().deleted(name)))


@router.delete("/deletedcertificates/{name}", status_code=204)
def purge_deleted(name: Name, call: CallDep) -> Response:
    """Purge: the keys are destroyed for good; the history stays in the log."""
    call.ledger.purge_certificate(call.ctx, name)
    return Response(status_code=204)


@router.post("/deletedcertificates/{name}/recover", response_model=models.CertificateBundle)
def recover_deleted(name: Name, call: CallDep) -> Response:
    call.ledger.recover_certificate(call.ctx, name)
    return render.kv(call.render(call.reads().certificate(name)))
