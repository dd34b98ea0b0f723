"""Reads for the CLI and the API: Key Vault JSON built from the views' rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.database import Db
from ledger.domain.errors import IssuerNotFound, NotFound, PendingNotFound
from ledger.domain.ids import certificate_id, issuer_id
from projections.view import iso

RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90


def epoch(text: str | None) -> int | None:
    """Key Vault's integer seconds from the views' fixed-width UTC text."""
    if text is None:
        return None
    return int(datetime.fromisoformat(text).timestamp())


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _attributes(enabled: Any, nbf: Any, exp: Any, created: Any, updated: Any) -> dict[str, Any]:
    return _drop_none(
        {
            "enabled": bool(enabled),
            "nbf": epoch(nbf),
            "exp": epoch(exp),
            "created": epoch(created),
            "updated": epoch(updated),
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": RECOVERABLE_DAYS,
        }
    )


VERSION_COLS = (
    "version, status, origin, issuer, provider, order_ref, key_id, key_reused, kty, key_size, "
    "crv, csr_sha256, policy_hash, content_type, cer, chain, x5t, serial, nbf, exp, enabled, "
    "tags, created, updated, promoted_at, superseded_at, previous_version, actor, request_id, "
    "seq, generation, error_code"
)
VERSION_FIELDS = tuple(c.strip() for c in VERSION_COLS.split(","))


@dataclass(frozen=True)
class CertRow:
    cert_id: str
    name: str
    state: str
    version: str | None
    policy: dict[str, Any] | None
    generation: int
    deleted_on: str | None
    scheduled_purge: str | None


class Queries:
    """Queries by name, in Key Vault's JSON shapes; `base` is the vault URL."""

    def __init__(self, db: Db, base: str) -> None:
        self.db = db
        self.base = base

    # -- rows --------------------------------------------------------------

    def cert_row(self, name: str, *, deleted: bool = False, unfinished: bool = False) -> CertRow:
        """The name's row; `unfinished` also accepts a name whose only operation ended."""
        rows = self.db.execute(
            "SELECT cert_id, name, state, version, policy, generation, deleted_on,"
            " scheduled_purge FROM v_current WHERE cert_id = ?",
            [str(certificate_id(name))],
        )
        if rows:
            r = rows[0]
            row = CertRow(
                r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, int(r[5]), r[6], r[7]
            )
            hidden = ("purged",) if unfinished else ("new", "purged")
            if (row.state == "deleted") == deleted and row.state not in hidden:
                return row
        what = "deleted certificate" if deleted else "certificate"
        raise NotFound(f"{what} {name!r} not found")

    def version_row(self, cert: CertRow, version: str | None) -> dict[str, Any]:
        if not version:
            if cert.version is None:
                raise NotFound(f"certificate {cert.name!r} has no completed version yet")
            version = cert.version
        rows = self.db.execute(
            f"SELECT {VERSION_COLS} FROM v_versions WHERE cert_id = ? AND version = ?"
            " AND status = 'completed' AND generation = ?",
            [cert.cert_id, version, cert.generation],
        )
        if not rows:
            raise NotFound(f"certificate {cert.name!r} has no version {version!r}")
        return dict(zip(VERSION_FIELDS, rows[0], strict=True))

    def version_rows(self, cert: CertRow, *, all_statuses: bool = False) -> list[dict[str, Any]]:
        status = "" if all_statuses else " AND status = 'completed'"
        rows = self.db.execute(
            f"SELECT {VERSION_COLS} FROM v_versions WHERE cert_id = ? AND generation = ?"
            f"{status} ORDER BY seq",
            [cert.cert_id, cert.generation],
        )
        return [dict(zip(VERSION_FIELDS, r, strict=True)) for r in rows]

    def _has_pending(self, cert: CertRow) -> bool:
        rows = self.db.execute(
            "SELECT 1 FROM v_operations WHERE cert_id = ? AND status = 'inProgress'",
            [cert.cert_id],
        )
        return bool(rows)

    # -- certificates ------------------------------------------------------

    def policy(self, name: str) -> dict[str, Any]:
        cert = self.cert_row(name)
        return {"id": f"{self.base}/certificates/{cert.name}/policy", **(cert.policy or {})}

    def _bundle(self, cert: CertRow, v: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.base}/certificates/{cert.name}/{v['version']}"
        bundle: dict[str, Any] = {
            "id": base,
            "kid": f"{self.base}/keys/{cert.name}/{v['version']}",
            "sid": f"{self.base}/secrets/{cert.name}/{v['version']}",
            "x5t": v["x5t"],
            "cer": v["cer"],
            "attributes": _attributes(v["enabled"], v["nbf"], v["exp"], v["created"], v["updated"]),
            "tags": json.loads(v["tags"] or "{}"),
            "policy": {"id": f"{self.base}/certificates/{cert.name}/policy", **(cert.policy or {})},
        }
        if self._has_pending(cert):
            bundle["pending"] = {"id": f"{self.base}/certificates/{cert.name}/pending"}
        return bundle

    def certificate(self, name: str, version: str | None = None) -> dict[str, Any]:
        """CertificateBundle of a version (default: the current one)."""
        cert = self.cert_row(name)
        return self._bundle(cert, self.version_row(cert, version))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """CertificateItems of the completed versions, oldest first."""
        cert = self.cert_row(name)
        return [
            {
                "id": f"{self.base}/certificates/{cert.name}/{v['version']}",
                "x5t": v["x5t"],
                "attributes": _attributes(
                    v["enabled"], v["nbf"], v["exp"], v["created"], v["updated"]
                ),
                "tags": json.loads(v["tags"] or "{}"),
            }
            for v in self.version_rows(cert)
        ]

    def list_certificates(
        self, *, limit: int = 25, after: str = "", include_pending: bool = False
    ) -> list[dict[str, Any]]:
        """CertificateItems of live certificates ordered by name, from after `after`."""
        states = "('active', 'pending')" if include_pending else "('active')"
        rows = self.db.execute(
            "SELECT c.name, c.x5t, c.nbf, c.exp, c.enabled, c.tags, v.created, v.updated,"
            " c.created, c.updated FROM v_current c LEFT JOIN v_versions v"
            " ON v.cert_id = c.cert_id AND v.version = c.version AND v.generation = c.generation"
            f" WHERE c.state IN {states} AND c.name > ? ORDER BY c.name LIMIT {int(limit)}",
            [after],
        )
        return [
            _drop_none(
                {
                    "id": f"{self.base}/certificates/{n}",
                    "x5t": x5t,
                    "attributes": _attributes(
                        True if enabled is None else enabled, nbf, exp, vc or cc, vu or cu
                    ),
                    "tags": json.loads(tags or "{}"),
                }
            )
            for n, x5t, nbf, exp, enabled, tags, vc, vu, cc, cu in rows
        ]

    def lineage(self, name: str) -> tuple[CertRow, list[dict[str, Any]]]:
        """Every version of the current generation, completed or not, with lineage facts."""
        cert = self.cert_row(name)
        return cert, self.version_rows(cert, all_statuses=True)

    def operation(self, name: str) -> dict[str, Any]:
        """CertificateOperation: the pending (or last finished) operation."""
        cert = self.cert_row(name, unfinished=True)
        rows = self.db.execute(
            "SELECT issuer, csr_der, cancellation_requested, status, status_details,"
            " error_code, error_message, request_id FROM v_operations WHERE cert_id = ?",
            [cert.cert_id],
        )
        if not rows:
            raise PendingNotFound(f"certificate {name!r} has no pending operation")
        issuer, csr, cancel, status, details, code, message, request_id = rows[0]
        body: dict[str, Any] = {
            "id": f"{self.base}/certificates/{cert.name}/pending",
            "issuer": {"name": issuer},
            "csr": csr,
            "cancellation_requested": bool(cancel),
            "status": status,
            "status_details": details,
            "target": f"{self.base}/certificates/{cert.name}",
            "request_id": request_id,
        }
        if code:
            body["error"] = {"code": code, "message": message}
        return _drop_none(body)

    def deleted(self, name: str) -> dict[str, Any]:
        cert = self.cert_row(name, deleted=True)
        body = self._bundle(cert, self.version_row(cert, None)) if cert.version else {}
        body.update(
            recoveryId=f"{self.base}/deletedcertificates/{cert.name}",
            deletedDate=epoch(cert.deleted_on),
            scheduledPurgeDate=epoch(cert.scheduled_purge),
        )
        return body

    def list_deleted(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, deleted_on, scheduled_purge FROM v_deleted WHERE is_deleted = 1"
            " ORDER BY name"
        )
        return [
            {
                "recoveryId": f"{self.base}/deletedcertificates/{n}",
                "id": f"{self.base}/certificates/{n}",
                "deletedDate": epoch(d),
                "scheduledPurgeDate": epoch(p),
            }
            for n, d, p in rows
        ]

    def inventory(
        self,
        *,
        subject: str | None = None,
        san: str | None = None,
        issuer: str | None = None,
        kty: str | None = None,
        expires_within_days: int | None = None,
        now: datetime | None = None,
        limit: int = 1000,
        after: str = "",
    ) -> list[dict[str, Any]]:
        """Current certificates matching every given filter, by name."""
        where = ["i.listed = 1", "i.name > ?"]
        params: list[Any] = [after]
        if subject:
            where.append("LOWER(i.subject) LIKE ?")
            params.append(f"%{subject.lower()}%")
        if san:
            where.append("i.cert_id IN (SELECT cert_id FROM v_inventory_sans WHERE san = ?)")
            params.append(san.lower())
        if issuer:
            where.append("i.issuer_key = ?")
            params.append(issuer.lower())
        if kty:
            where.append("i.kty = ?")
            params.append(kty.upper())
        if expires_within_days is not None:
            limit_at = (now or datetime.now(UTC)) + timedelta(days=expires_within_days)
            where.append("i.exp <= ?")
            params.append(iso(limit_at))
        rows = self.db.execute(
            "SELECT i.name, i.version, i.subject, i.issuer, i.kty, i.key_size, i.crv, i.nbf,"
            f" i.exp, i.enabled FROM v_inventory i WHERE {' AND '.join(where)}"
            f" ORDER BY i.name LIMIT {int(limit)}",
            params,
        )
        keys = ("name", "version", "subject", "issuer", "kty", "key_size", "crv", "nbf", "exp")
        return [{**dict(zip(keys, r[:9], strict=True)), "enabled": bool(r[9])} for r in rows]

    # -- key and secret ----------------------------------------------------

    def _managed(self, name: str, version: str | None, kind: str) -> tuple[CertRow, dict[str, Any]]:
        cert = self.cert_row(name)
        version = version or cert.version
        rows = self.db.execute(
            "SELECT version, kty, key_size, crv, public_key_pem, content_type, enabled, nbf, exp,"
            " tags, created, updated FROM v_managed WHERE cert_id = ? AND version = ?"
            " AND addressable = 1",
            [cert.cert_id, version or ""],
        )
        if not rows:
            raise NotFound(f"{kind} {name!r} has no version {version!r}")
        keys = (
            "version",
            "kty",
            "key_size",
            "crv",
            "public_key_pem",
            "content_type",
            "enabled",
            "nbf",
            "exp",
            "tags",
            "created",
            "updated",
        )
        return cert, dict(zip(keys, rows[0], strict=True))

    def key(self, name: str, version: str | None = None) -> dict[str, Any]:
        """KeyBundle of the managed key (public JWK)."""
        from cryptography.hazmat.primitives import serialization

        from ledger.pki import public_jwk

        cert, m = self._managed(name, version, "key")
        kid = f"{self.base}/keys/{cert.name}/{m['version']}"
        public = serialization.load_pem_public_key(m["public_key_pem"].encode())
        return {
            "key": public_jwk(public, kid, ["sign", "verify"], hsm=str(m["kty"]).endswith("-HSM")),
            "attributes": _attributes(m["enabled"], m["nbf"], m["exp"], m["created"], m["updated"]),
            "tags": json.loads(m["tags"] or "{}"),
            "managed": True,
        }

    def secret(self, name: str, version: str | None = None) -> dict[str, Any]:
        """SecretBundle without its value (the value comes from key custody)."""
        cert, m = self._managed(name, version, "secret")
        return {
            "contentType": m["content_type"],
            "id": f"{self.base}/secrets/{cert.name}/{m['version']}",
            "attributes": _attributes(m["enabled"], m["nbf"], m["exp"], m["created"], m["updated"]),
            "tags": json.loads(m["tags"] or "{}"),
            "kid": f"{self.base}/keys/{cert.name}/{m['version']}",
            "managed": True,
        }

    # -- issuers and contacts ----------------------------------------------

    def issuer(self, name: str) -> dict[str, Any]:
        rows = self.db.execute(
            "SELECT name, provider, account_id, org_id, admin_contacts, enabled, created,"
            " updated FROM v_issuers WHERE issuer_id = ? AND deleted = 0",
            [str(issuer_id(name))],
        )
        if not rows:
            raise IssuerNotFound(f"issuer {name!r} not found")
        n, provider, account, org, admins, enabled, created, updated = rows[0]
        body: dict[str, Any] = {
            "id": f"{self.base}/certificates/issuers/{n}",
            "provider": provider,
            "attributes": {
                "enabled": bool(enabled),
                "created": epoch(created),
                "updated": epoch(updated),
            },
        }
        if account:
            body["credentials"] = {"account_id": account}
        contacts = json.loads(admins or "[]")
        if org or contacts:
            body["org_details"] = _drop_none({"id": org, "admin_details": contacts})
        return body

    def issuers(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, provider FROM v_issuers WHERE deleted = 0 ORDER BY name"
        )
        return [{"id": f"{self.base}/certificates/issuers/{n}", "provider": p} for n, p in rows]

    def contacts(self) -> dict[str, Any]:
        rows = self.db.execute("SELECT email, name, phone FROM v_contacts ORDER BY position")
        if not rows:
            raise NotFound("no certificate contacts are set")
        return {
            "id": f"{self.base}/certificates/contacts",
            "contacts": [_drop_none({"email": e, "name": n, "phone": p}) for e, n, p in rows],
        }

    # -- access ------------------------------------------------------------

    def grants(self) -> dict[str, list[str]]:
        rows = self.db.execute("SELECT principal, permission FROM v_access ORDER BY principal")
        grants: dict[str, list[str]] = {}
        for principal, permission in rows:
            grants.setdefault(principal, []).append(permission)
        return grants

    def denials(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT at, principal, permission, target, request_id FROM v_access_denied"
            f" ORDER BY position DESC LIMIT {int(limit)}"
        )
        keys = ("at", "principal", "permission", "target", "request_id")
        return [dict(zip(keys, r, strict=True)) for r in rows]
