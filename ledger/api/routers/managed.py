"""The managed key and secret of each certificate version: read, sign, verify; no writes."""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ledger.api import models, render
from ledger.api.routers import Name
from ledger.api.services import Call, call_of
from ledger.domain.errors import Conflict, Forbidden

router = APIRouter(tags=["managed keys and secrets"], responses=models.ERRORS)
CallDep = Annotated[Call, Depends(call_of)]


# -- keys ---------------------------------------------------------------------


def _key(name: str, version: str | None, call: Call) -> Response:
    call.authorize("get", f"certificates/{name}")
    body = call.reads().key(name, version)
    if not body["attributes"].get("enabled", True):
        raise Forbidden(f"key {name!r} is disabled: operation get is not allowed")
    return render.kv(call.render(body))


@router.get("/keys/{name}", response_model=models.KeyBundle)
def get_key(name: Name, call: CallDep) -> Response:
    """The current version's key (public JWK); the private key never leaves the vault."""
    return _key(name, None, call)


@router.get("/keys/{name}/", response_model=models.KeyBundle, include_in_schema=False)
def get_key_slash(name: Name, call: CallDep) -> Response:
    return _key(name, None, call)


@router.get("/keys/{name}/{version}", response_model=models.KeyBundle)
def get_key_version(name: Name, version: str, call: CallDep) -> Response:
    return _key(name, version, call)


@router.post("/keys/{name}/{version}/sign", response_model=models.KeyOperationResult)
def sign(name: Name, version: str, body: models.KeySignParameters, call: CallDep) -> Response:
    """Sign a digest with the certificate's private key (refused when disabled or expired)."""
    digest = render.unb64(body.value, "value")
    signature, v = call.ledger.sign(call.ctx, name, version or None, body.alg, digest)
    kid = f"{call.base}/keys/{name}/{v.version}"
    return render.kv({"kid": kid, "value": render.b64url(signature)})


@router.post("/keys/{name}/{version}/verify", response_model=models.KeyVerifyResult)
def verify(name: Name, version: str, body: models.KeyVerifyParameters, call: CallDep) -> Response:
    """Check a signature of a digest with the certificate's public key."""
    digest = render.unb64(body.digest, "digest")
    signature = render.unb64(body.value, "value")
    ok = call.ledger.verify(call.ctx, name, version or None, body.alg, digest, signature)
    return render.kv({"value": ok})


def _refuse(call: Call, kind: str, name: str, what: str, *, creating: bool) -> NoReturn:
    """Key Vault refuses writes to a certificate's key and secret; this vault holds no others."""
    call.authorize("get", f"certificates/{name}")
    managed = call.ledger.find_certificate(name) is not None
    if managed and creating:
        raise Conflict(f"{kind} name {name!r} is in use by a certificate")
    if managed:
        raise Forbidden(f"{kind} {name!r} is managed by its certificate: {what} is not allowed")
    raise Forbidden(f"this vault holds certificate-managed {kind}s only: {what} is not allowed")


@router.post("/keys/{name}/create", include_in_schema=False)
def create_key(name: Name, call: CallDep) -> Response:
    _refuse(call, "key", name, "create key", creating=True)


@router.put("/keys/{name}", include_in_schema=False)
def import_key(name: Name, call: CallDep) -> Response:
    _refuse(call, "key", name, "import key", creating=True)


@router.patch("/keys/{name}/{version}", include_in_schema=False)
def update_key(name: Name, version: str, call: CallDep) -> Response:
    _refuse(call, "key", name, "update key", creating=False)


@router.delete("/keys/{name}", include_in_schema=False)
def delete_key(name: Name, call: CallDep) -> Response:
    _refuse(call, "key", name, "delete key", creating=False)


# -- secrets ------------------------------------------------------------------


def _secret(name: str, version: str | None, call: Call) -> Response:
    value, v = call.ledger.secret_value(call.ctx, name, version)
    body = call.reads().secret(name, v.version)
    body["value"] = value
    return render.kv(call.render(body))


@router.get("/secrets/{name}", response_model=models.SecretBundle)
def get_secret(name: Name, call: CallDep) -> Response:
    """The current version's secret: PKCS#12 (base64) or PEM, with the key if exportable."""
    return _secret(name, None, call)


@router.get("/secrets/{name}/", response_model=models.SecretBundle, include_in_schema=False)
def get_secret_slash(name: Name, call: CallDep) -> Response:
    return _secret(name, None, call)


@router.get("/secrets/{name}/{version}", response_model=models.SecretBundle)
def get_secret_version(name: Name, version: str, call: CallDep) -> Response:
    return _secret(name, version, call)


@router.put("/secrets/{name}", include_in_schema=False)
def set_secret(name: Name, call: CallDep) -> Response:
    _refuse(call, "secret", name, "set secret", creating=True)


@router.patch("/secrets/{name}/{version}", include_in_schema=False)
def update_secret(name: Name, version: str, call: CallDep) -> Response:
    _refuse(call, "secret", name, "update secret", creating=False)


@router.delete("/secrets/{name}", include_in_schema=False)
def delete_secret(name: Name, call: CallDep) -> Response:
    _refuse(call, "secret", name, "delete secret", creating=False)
