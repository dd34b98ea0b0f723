"""Certificate contacts: set, get, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.services import Call, call_of

router = APIRouter(tags=["contacts"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


@router.put("/certificates/contacts", response_model=models.Contacts)
def set_contacts(body: models.ContactsParameters, call: CallDep) -> Response:
    call.ledger.set_contacts(call.ctx, [c.model_dump(exclude_none=True) for c in body.contacts])
    return render.kv(call.reads().contacts())


@router.get("/certificates/contacts", response_model=models.Contacts)
def get_contacts(call: CallDep) -> Response:
    call.authorize("managecontacts", "certificates/contacts")
    return render.kv(call.reads().contacts())


@router.delete("/certificates/contacts", response_model=models.Contacts)
def delete_contacts(call: CallDep) -> Response:
    """Delete the contacts; answers those that were set."""
    call.authorize("managecontacts", "certificates/contacts")
    before = call.reads().contacts()
    call.ledger.delete_contacts(call.ctx)
    return render.kv(before)
