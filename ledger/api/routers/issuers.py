"""Certificate issuers: set, update, get, list, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.paging import offset_page
from ledger.api.routers import Name
from ledger.api.services import Call, call_of

router = APIRouter(tags=["issuers"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


def _admins(details: models.OrganizationDetails | None) -> list[dict[str, str]] | None:
    if details is None or details.admin_details is None:
        return None
    return [a.model_dump(exclude_none=True) for a in details.admin_details]


@router.get("/certificates/issuers", response_model=models.IssuerListResult)
def list_issuers(
    request: Request,
    call: CallDep,
    maxresults: Annotated[int | None, Query()] = None,
    skiptoken: Annotated[str | None, Query(alias="$skiptoken")] = None,
) -> Response:
    call.authorize("listissuers", "certificates/issuers")
    items = call.reads().issuers()
    return render.kv(offset_page(request, call.base, items, maxresults, skiptoken))


@router.put("/certificates/issuers/{name}", response_model=models.IssuerBundle)
def set_issuer(name: Name, body: models.CertificateIssuerSetParameters, call: CallDep) -> Response:
    """Create or replace an issuer: its provider (e.g. LocalCA), credentials, organisation."""
    creds, org = body.credentials, body.org_details
    call.ledger.set_issuer(
        call.ctx,
        name,
        provider=body.provider,
        account_id=creds.account_id if creds else None,
        password=creds.pwd if creds else None,
        org_id=org.id if org else None,
        admin_contacts=_admins(org) or [],
        enabled=body.attributes.enabled is not False if body.attributes else True,
    )
    return render.kv(call.reads().issuer(name))


@router.patch("/certificates/issuers/{name}", response_model=models.IssuerBundle)
def update_issuer(
    name: Name, body: models.CertificateIssuerUpdateParameters, call: CallDep
) -> Response:
    """Change some of an issuer's settings; the others stay."""
    call.authorize("setissuers", f"certificates/issuers/{name}")
    current: dict[str, Any] = call.reads().issuer(name)
    creds, org = body.credentials, body.org_details
    old_org = current.get("org_details", {})
    enabled = current["attributes"]["enabled"]
    if body.attributes is not None and body.attributes.enabled is not None:
        enabled = body.attributes.enabled
    call.ledger.set_issuer(
        call.ctx,
        name,
        provider=body.provider or current["provider"],
        account_id=(
            creds.account_id
            if creds and creds.account_id is not None
            else current.get("credentials", {}).get("account_id")
        ),
        password=creds.pwd if creds else None,
        org_id=org.id if org and org.id is not None else old_org.get("id"),
        admin_contacts=_admins(org) or old_org.get("admin_details", []),
        enabled=enabled,
    )
    return render.kv(call.reads().issuer(name))


@router.get("/certificates/issuers/{name}", response_model=models.IssuerBundle)
def get_issuer(name: Name, call: CallDep) -> Response:
    call.authorize("getissuers", f"certificates/issuers/{name}")
    return render.kv(call.reads().issuer(name))


@router.delete("/certificates/issuers/{name}", response_model=models.IssuerBundle)
def delete_issuer(name: Name, call: CallDep) -> Response:
    """Delete an issuer; answers the issuer as it was."""
    call.authorize("deleteissuers", f"certificates/issuers/{name}")
    before = call.reads().issuer(name)
    call.ledger.delete_issuer(call.ctx, name)
    return render.kv(before)
