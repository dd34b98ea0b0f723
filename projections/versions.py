"""Every version of every certificate, with its lineage."""

from __future__ import annotations

from typing import Any

from ledger.database import Cursor
from projections.view import View, at, cid, insert, iso, js, on, update

T = "v_versions"


class VersionsView(View):
    name = "versions"
    tables = (T, "v_versions_gen")
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT NOT NULL, generation INTEGER NOT NULL, version TEXT NOT NULL,"
        " seq INTEGER NOT NULL, status TEXT NOT NULL, origin TEXT NOT NULL, issuer TEXT,"
        " provider TEXT, order_ref TEXT, key_id TEXT, key_reused INTEGER, kty TEXT,"
        " key_size INTEGER, crv TEXT, public_key_pem TEXT, exportable INTEGER, csr_der TEXT,"
        " csr_sha256 TEXT, policy_hash TEXT, content_type TEXT, cer TEXT, chain TEXT,"
        " x5t TEXT, serial TEXT, nbf TEXT, exp TEXT, enabled INTEGER NOT NULL, tags TEXT,"
        " created TEXT NOT NULL, updated TEXT NOT NULL, promoted_at TEXT, superseded_at TEXT,"
        " previous_version TEXT, actor TEXT, request_id TEXT, error_code TEXT,"
        " PRIMARY KEY (cert_id, version))",
        f"CREATE INDEX IF NOT EXISTS {T}_by_cert ON {T} (cert_id, generation, seq)",
        "CREATE TABLE IF NOT EXISTS v_versions_gen ("
        " cert_id TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
    )

    @staticmethod
    def _generation(cur: Cursor, cert_id: str) -> int:
        rows = cur.execute("SELECT generation FROM v_versions_gen WHERE cert_id = ?", [cert_id])
        return int(rows[0][0]) if rows else 1

    def _set(self, cur: Cursor, e: Any, **values: Any) -> None:
        update(cur, T, {"cert_id": cid(e), "version": e.version}, values)

    @on("Certificate.Registered")
    def registered(self, cur: Cursor, e: Any) -> None:
        insert(cur, "v_versions_gen", {"cert_id": cid(e), "generation": 1})

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            T,
            {
                "cert_id": cid(e),
                "generation": self._generation(cur, cid(e)),
                "version": e.version,
                "seq": e.originator_version,
                "status": "pending",
                "origin": "self" if e.issuer_name.lower() == "self" else "pending",
                "issuer": e.issuer_name,
                "policy_hash": e.policy_fingerprint,
                "content_type": e.content_type,
                "enabled": 1,
                "tags": js(e.tags),
                "created": at(e),
                "updated": at(e),
                "actor": e.actor,
                "request_id": e.request_id,
            },
        )

    @on("Certificate.KeyPairCreated")
    def key_pair(self, cur: Cursor, e: Any) -> None:
        self._set(
            cur,
            e,
            key_id=e.key_id,
            key_reused=int(e.reused),
            kty=e.kty,
            key_size=e.key_size,
            crv=e.crv,
            public_key_pem=e.public_key_pem,
            exportable=int(e.exportable),
        )

    @on("Certificate.CsrIssued")
    def csr(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, csr_der=e.csr_der, csr_sha256=e.csr_sha256)

    @on("Certificate.IssuerOrderPlaced")
    def ordered(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, provider=e.provider, order_ref=e.order_ref)

    @on("Certificate.X509Merged")
    def merged(self, cur: Cursor, e: Any) -> None:
        self._set(
            cur,
            e,
            origin=e.source,
            cer=e.cert_der,
            chain=js(list(e.chain_der)),
            x5t=e.x5t,
            serial=e.serial,
            nbf=iso(e.not_before),
            exp=iso(e.not_after),
            updated=at(e),
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, cur: Cursor, e: Any) -> None:
        when = at(e)
        self._set(cur, e, status="completed", promoted_at=when, previous_version=e.previous_version)
        if e.previous_version:
            update(
                cur, T, {"cert_id": cid(e), "version": e.previous_version}, {"superseded_at": when}
            )

    @on("Certificate.OperationCancelled")
    def cancelled(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, status="cancelled", updated=at(e))

    @on("Certificate.OperationFailed")
    def failed(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, status="failed", error_code=e.code, updated=at(e))

    @on("Certificate.OperationDeleted")
    def op_deleted(self, cur: Cursor, e: Any) -> None:
        cur.execute(
            f"UPDATE {T} SET status = 'deleted' WHERE cert_id = ? AND version = ?"
            " AND status = 'pending'",
            [cid(e), e.version],
        )

    @on("Certificate.CertificateImported")
    def imported(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            T,
            {
                "cert_id": cid(e),
                "generation": self._generation(cur, cid(e)),
                "version": e.version,
                "seq": e.originator_version,
                "status": "pending",
                "origin": "import",
                "issuer": "Unknown",
                "key_id": e.key_id,
                "key_reused": 0,
                "kty": e.kty,
                "key_size": e.key_size,
                "crv": e.crv,
                "public_key_pem": e.public_key_pem,
                "exportable": 1,
                "policy_hash": e.policy_fingerprint,
                "content_type": e.content_type,
                "cer": e.cert_der,
                "chain": js(list(e.chain_der)),
                "x5t": e.x5t,
                "serial": e.serial,
                "nbf": iso(e.not_before),
                "exp": iso(e.not_after),
                "enabled": 1,
                "tags": js({}),
                "created": at(e),
                "updated": at(e),
                "actor": e.actor,
                "request_id": e.request_id,
            },
        )

    @on("Certificate.AttributesUpdated")
    def attributes(self, cur: Cursor, e: Any) -> None:
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        self._set(cur, e, **values)

    @on("Certificate.Purged")
    def purged(self, cur: Cursor, e: Any) -> None:
        update(cur, "v_versions_gen", {"cert_id": cid(e)}, {"generation": e.generation + 1})
