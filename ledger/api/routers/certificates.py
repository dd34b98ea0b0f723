"""Certificates: create, import, get, list, versions, update, policy, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.paging import decode_token, next_link, offset_page, page_size
from ledger.api.routers import Name
from ledger.api.services import Call, call_of

router = APIRouter(tags=["certificates"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]
MaxResults = Annotated[int | None, Query()]
SkipToken = Annotated[str | None, Query(alias="$skiptoken")]


@router.get("/certificates", response_model=models.CertificateListResult)
def list_certificates(
    request: Request,
    call: CallDep,
    maxresults: MaxResults = None,
    include_pending: Annotated[bool | None, Query(alias="includePending")] = None,
    skiptoken: SkipToken = None,
) -> Response:
    """List certificates (names in order); `includePending` adds those not yet completed."""
    call.authorize("list", "certificates")
    size = page_size(maxresults)
    after = decode_token(skiptoken)
    items = call.reads().list_certificates(
        limit=size + 1, after=after, include_pending=bool(include_pending)
    )
    body: dict[str, Any] = {"value": items[:size], "nextLink": None}
    if len(items) > size:
        last = items[size - 1]["id"].rsplit("/", 1)[-1]
        body["nextLink"] = next_link(request, call.base, last)
    return render.kv(call.render(body))


@router.post(
    "/certificates/{name}/create",
    status_code=202,
    response_model=models.CertificateOperation,
)
def create_certificate(
    name: Name, body: models.CertificateCreateParameters, request: Request, call: CallDep
) -> Response:
    """Start creating a certificate (or its next version): 202 with the pending operation."""
    enabled = body.attributes.enabled if body.attributes else None
    cert = call.ledger.create_certificate(
        call.ctx, name, body.policy, tags=body.tags, enabled=enabled is not False
    )
    call.services.wake_workers()
    op = render.operation(call.base, cert)
    version = request.query_params.get("api-version", "")
    location = (
        f"{call.base}/certificates/{cert.name}/pending?api-version={version}"
        f"&request_id={op['request_id']}"
    )
    return render.kv(op, 202, {"Location": location, "Retry-After": "1"})


@router.post("/certificates/{name}/import", response_model=models.CertificateBundle)
def import_certificate(
    name: Name, body: models.CertificateImportParameters, call: CallDep
) -> Response:
    """Import a PFX or PEM (private key, certificate, chain) as a new current version."""
    value = body.value.strip()
    data = value.encode() if value.startswith("-----") else render.unb64(value, "value")
    call.ledger.import_certificate(call.ctx, name, data, password=body.pwd, policy=body.policy)
    enabled = body.attributes.enabled if body.attributes else None
    if body.tags is not None or enabled is False:
        call.ledger.update_certificate(call.ctx, name, enabled=enabled, tags=body.tags)
    return render.kv(call.render(call.reads().certificate(name)))


@router.get("/certificates/{name}/versions", response_model=models.CertificateListResult)
def list_versions(
    name: Name,
    request: Request,
    call: CallDep,
    maxresults: MaxResults = None,
    skiptoken: SkipToken = None,
) -> Response:
    """List a certificate's completed versions."""
    call.authorize("list", f"certificates/{name}")
    items = call.reads().versions(name)
    return render.kv(call.render(offset_page(request, call.base, items, maxresults, skiptoken)))


@router.get("/certificates/{name}/policy")
def get_policy(name: Name, call: CallDep) -> Response:
    """The certificate's policy."""
    call.authorize("get", f"certificates/{name}/policy")
    return render.kv(call.reads().policy(name))


@router.patch("/certificates/{name}/policy")
def update_policy(name: Name, body: dict[str, Any], call: CallDep) -> Response:
    """Merge a partial policy onto the stored one (applies to the next version)."""
    call.ledger.update_policy(call.ctx, name, body)
    return render.kv(call.reads().policy(name))


@router.get("/certificates/{name}", response_model=models.CertificateBundle)
def get_certificate(name: Name, call: CallDep) -> Response:
    """The current version."""
    call.authorize("get", f"certificates/{name}")
    return render.kv(call.render(call.reads().certificate(name)))


@router.get(
    "/certificates/{name}/", response_model=models.CertificateBundle, include_in_schema=False
)
def get_certificate_slash(name: Name, call: CallDep) -> Response:
    return get_certificate(name, call)


@router.get("/certificates/{name}/{version}", response_model=models.CertificateBundle)
def get_certificate_version(name: Name, version: str, call: CallDep) -> Response:
    """A version of the certificate."""
    call.authorize("get", f"certificates/{name}")
    return render.kv(call.render(call.reads().certificate(name, version)))


@router.patch("/certificates/{name}/{version}", response_model=models.CertificateBundle)
def update_certificate(
    name: Name, version: str, body: models.CertificateUpdateParameters, call: CallDep
) -> Response:
    """Update a version's attributes (enabled) and tags; a policy here is merged too."""
    enabled = body.attributes.enabled if body.attributes else None
    updated = call.ledger.update_certificate(
        call.ctx, name, version or None, enabled=enabled, tags=body.tags
    )
    if body.policy:
        call.ledger.update_policy(call.ctx, name, body.policy)
    return render.kv(call.render(call.reads().certificate(name, updated.version)))


@router.patch(
    "/certificates/{name}/", response_model=models.CertificateBundle, include_in_schema=False
)
def update_current(name: Name, body: models.CertificateUpdateParameters, call: CallDep) -> Response:
    return update_certificate(name, "", body, call)


@router.delete("/certificates/{name}", response_model=models.DeletedCertificateBundle)
def delete_certificate(name: Name, call: CallDep) -> Response:
    """Soft delete: recoverable for the vault's retention period, the name stays taken."""
    call.ledger.delete_certificate(call.ctx, name)
    return render.kv(call.render(call.reads().deleted(name)))
