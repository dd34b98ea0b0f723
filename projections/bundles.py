"""Key Vault JSON views of certificates, operations, keys, secrets and issuers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization

from ledger.domain.certificate import Certificate, Version, scheduled_purge
from ledger.domain.issuer import Issuer
from ledger.pki import public_jwk

RECOVERY_LEVEL = "Recoverable+Purgeable"


def ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def attributes(v: Version) -> dict[str, Any]:
    return _drop_none(
        {
            "enabled": v.enabled,
            "nbf": ts(v.not_before),
            "exp": ts(v.not_after),
            "created": ts(v.created),
            "updated": ts(v.updated),
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": 90,
        }
    )


def policy_json(cert: Certificate, base: str) -> dict[str, Any]:
    return {"id": f"{base}/certificates/{cert.name}/policy", **(cert.policy or {})}


def certificate_bundle(cert: Certificate, v: Version, base: str) -> dict[str, Any]:
    """CertificateBundle for one completed version."""
    bundle: dict[str, Any] = {
        "id": f"{base}/certificates/{cert.name}/{v.version}",
        "kid": f"{base}/keys/{cert.name}/{v.version}",
        "sid": f"{base}/secrets/{cert.name}/{v.version}",
        "x5t": v.x5t,
        "cer": v.cert_der,
        "attributes": attributes(v),
        "tags": dict(v.tags),
        "policy": policy_json(cert, base),
    }
    if cert.operation is not None and cert.operation.in_progress:
        bundle["pending"] = {"id": f"{base}/certificates/{cert.name}/pending"}
    return bundle


def certificate_item(cert: Certificate, v: Version, base: str) -> dict[str, Any]:
    """CertificateItem, as in a list of versions."""
    return {
        "id": f"{base}/certificates/{cert.name}/{v.version}",
        "x5t": v.x5t,
        "attributes": attributes(v),
        "tags": dict(v.tags),
    }


def operation_json(cert: Certificate, base: str) -> dict[str, Any]:
    """CertificateOperation for the pending (or last finished) operation."""
    op = cert.require_operation()
    v = cert.versions.get(op.version)
    body: dict[str, Any] = {
        "id": f"{base}/certificates/{cert.name}/pending",
        "issuer": {"name": op.issuer_name},
        "csr": v.csr_der if v is not None else None,
        "cancellation_requested": op.cancellation_requested,
        "status": op.status,
        "status_details": op.status_details,
        "target": f"{base}/certificates/{cert.name}",
        "request_id": op.request_id,
    }
    if op.error_code:
        body["error"] = {"code": op.error_code, "message": op.error_message}
    return _drop_none(body)


def deleted_bundle(cert: Certificate, v: Version | None, base: str) -> dict[str, Any]:
    assert cert.deleted_on is not None
    body = certificate_bundle(cert, v, base) if v is not None else {}
    body.update(
        {
            "recoveryId": f"{base}/deletedcertificates/{cert.name}",
            "deletedDate": ts(cert.deleted_on),
            "scheduledPurgeDate": ts(scheduled_purge(cert.deleted_on)),
        }
    )
    return body


def secret_bundle(cert: Certificate, v: Version, value: str, base: str) -> dict[str, Any]:
    return {
        "value": value,
        "contentType": v.content_type,
        "id": f"{base}/secrets/{cert.name}/{v.version}",
        "attributes": attributes(v),
        "tags": dict(v.tags),
        "kid": f"{base}/keys/{cert.name}/{v.version}",
        "managed": True,
    }


def secret_metadata(cert: Certificate, v: Version, base: str) -> dict[str, Any]:
    """The secret bundle without its value, for inoperable versions and listings."""
    body = secret_bundle(cert, v, "", base)
    del body["value"]
    return body


def key_bundle(cert: Certificate, v: Version, base: str) -> dict[str, Any]:
    assert v.public_key_pem is not None
    public = serialization.load_pem_public_key(v.public_key_pem.encode())
    kid = f"{base}/keys/{cert.name}/{v.version}"
    ops = ["sign", "verify"]
    return {
        "key": public_jwk(public, kid, ops, hsm=(v.kty or "").endswith("-HSM")),
        "attributes": attributes(v),
        "tags": dict(v.tags),
        "managed": True,
    }


def issuer_bundle(issuer: Issuer, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{base}/certificates/issuers/{issuer.name}",
        "provider": issuer.provider,
        "attributes": {
            "enabled": issuer.enabled,
            "created": ts(issuer.created_on),
            "updated": ts(issuer.modified_on),
        },
    }
    if issuer.account_id:
        body["credentials"] = {"account_id": issuer.account_id}
    if issuer.org_id or issuer.admin_contacts:
        body["org_details"] = _drop_none(
            {"id": issuer.org_id, "admin_details": [dict(c) for c in issuer.admin_contacts]}
        )
    return body
