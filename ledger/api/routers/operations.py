"""The pending operation: get, cancel, delete, and the merge of a CA-signed certificate."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.routers import Name
from ledger.api.services import Call, call_of
from ledger.domain.errors import BadParameter

router = APIRouter(tags=["operations"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


@router.get("/certificates/{name}/pending", response_model=models.CertificateOperation)
def get_operation(name: Name, call: CallDep) -> Response:
    """The pending (or last finished) creation operation.

    While it is in progress with a CA that answers by itself, and this process runs the
    worker, the answer may wait (`serve --pending-wait`, default 1 s) for it to end.
    """
    call.authorize("get", f"certificates/{name}/pending")
    body = call.reads().operation(name)
    if (
        body["status"] == "inProgress"
        and body["issuer"]["name"] != "Unknown"  # waits for a merge, not for the worker
        and not body["cancellation_requested"]
        and call.services.await_operation(name, body["request_id"])
    ):
        body = call.reads().operation(name)
    return render.kv(body)


@router.patch("/certificates/{name}/pending", response_model=models.CertificateOperation)
def cancel_operation(
    name: Name, body: models.CertificateOperationUpdateParameter, call: CallDep
) -> Response:
    """Request cancellation (honoured at the operation's next step)."""
    if not body.cancellation_requested:
        raise BadParameter("cancellation_requested: only true is accepted")
    cert = call.ledger.cancel_operation(call.ctx, name)
    call.services.wake_workers()
    return render.kv(render.operation(call.base, cert))


@router.delete("/certificates/{name}/pending", response_model=models.CertificateOperation)
def delete_operation(name: Name, call: CallDep) -> Response:
    """Delete the operation, cancelling it if still in progress; answers what it was."""
    call.authorize("delete", f"certificates/{name}/pending")
    before = call.reads().operation(name)
    call.ledger.delete_operation(call.ctx, name)
    if before.get("status") == "inProgress":
        before["status"] = "cancelled"
        before["status_details"] = "The operation was deleted."
    return render.kv(before)


@router.post(
    "/certificates/{name}/pending/merge", status_code=201, response_model=models.CertificateBundle
)
def merge_certificate(
    name: Name, body: models.CertificateMergeParameters, call: CallDep
) -> Response:
    """Merge the CA-signed certificate (and chain) into the pending key pair."""
    pem = "".join(_pem(item, i) for i, item in enumerate(body.x5c))
    call.ledger.merge_certificate(call.ctx, name, pem)
    enabled = body.attributes.enabled if body.attributes else None
    if body.tags is not None or enabled is False:
        call.ledger.update_certificate(call.ctx, name, enabled=enabled, tags=body.tags)
    return render.kv(call.render(call.reads().certificate(name)), 201)


def _pem(item: str, index: int) -> str:
    """One x5c entry (base64 DER, or base64 of PEM text) as PEM."""
    data = render.unb64(item, f"x5c[{index}]")
    if data.lstrip().startswith(b"-----"):
        return data.decode("ascii", "replace") + "\n"
    body = base64.encodebytes(data).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
