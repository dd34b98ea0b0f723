"""Every version of every certificate, with its lineage."""

from __future__ import annotations

from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, iso_of, js, on

T = "v_versions"
G = "v_versions_gen"


class VersionsView(View):
    name = "versions"
    keys = {T: ("cert_id", "version"), G: ("cert_id",)}
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
    def _generation(rows: Rows, cert_id: str) -> int:
        row = rows.get(G, cert_id)
        return int(row["generation"]) if row else 1

    def _set(self, rows: Rows, e: Any, **values: Any) -> None:
        rows.patch(T, (cid(e), e.version), **values)

    @on("Certificate.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        rows.put(G, {"cert_id": cid(e), "generation": 1}, new=True)

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        rows.put(
            T,
            {
                "cert_id": cid(e),
                "generation": self._generation(rows, cid(e)),
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
            new=True,
        )

    @on("Certificate.KeyPairCreated")
    def key_pair(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
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
    def csr(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, csr_der=e.csr_der, csr_sha256=e.csr_sha256)

    @on("Certificate.IssuerOrderPlaced")
    def ordered(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, provider=e.provider, order_ref=e.order_ref)

    @on("Certificate.X509Merged")
    def merged(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            origin=e.source,
            cer=e.cert_der,
            chain=js(list(e.chain_der)),
            x5t=e.x5t,
            serial=e.serial,
            nbf=iso_of(e, "not_before"),
            exp=iso_of(e, "not_after"),
            updated=at(e),
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        when = at(e)
        previous = e.previous_version
        self._set(rows, e, status="completed", promoted_at=when, previous_version=previous)
        if e.previous_version:
            rows.patch(T, (cid(e), e.previous_version), superseded_at=when)

    @on("Certificate.OperationCancelled")
    def cancelled(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, status="cancelled", updated=at(e))

    @on("Certificate.OperationFailed")
    def failed(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, status="failed", error_code=e.code, updated=at(e))

    @on("Certificate.OperationDeleted")
    def op_deleted(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e), e.version)
        if row is not None and row["status"] == "pending":
            rows.patch(T, (cid(e), e.version), status="deleted")

    @on("Certificate.CertificateImported")
    def imported(self, rows: Rows, e: Any) -> None:
        rows.put(
            T,
            {
                "cert_id": cid(e),
                "generation": self._generation(rows, cid(e)),
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
                "nbf": iso_of(e, "not_before"),
                "exp": iso_of(e, "not_after"),
                "enabled": 1,
                "tags": "{}",
                "created": at(e),
                "updated": at(e),
                "actor": e.actor,
                "request_id": e.request_id,
            },
            new=True,
        )

    @on("Certificate.AttributesUpdated")
    def attributes(self, rows: Rows, e: Any) -> None:
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        self._set(rows, e, **values)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        rows.patch(G, (cid(e),), generation=e.generation + 1)
