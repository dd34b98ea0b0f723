"""A searchable inventory of current certificates: subject, SAN, issuer, key type, expiry."""

from __future__ import annotations

from typing import Any

from projections.rows import Rows
from projections.view import View, cid, iso_of, loads, on, staged
from projections.x509facts import x509_facts

T = "v_inventory"
SANS = "v_inventory_sans"
S = "v_inventory_staged"
FACTS = ("issuer", "subject", "issuer_dn", "kty", "key_size", "crv", "nbf", "exp")


def describe(cert_der: str) -> dict[str, Any]:
    """Subject, issuer DN and SANs of a certificate, lower-cased where matching is by name."""
    return x509_facts(cert_der)[1]


class InventoryView(View):
    name = "inventory"
    keys = {T: ("cert_id",), SANS: ("cert_id", "san"), S: ("cert_id", "version")}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, name TEXT NOT NULL, listed INTEGER NOT NULL, version TEXT,"
        " issuer TEXT, issuer_key TEXT, subject TEXT, issuer_dn TEXT, kty TEXT,"
        " key_size INTEGER, crv TEXT, nbf TEXT, exp TEXT, enabled INTEGER)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_name ON {T} (listed, name)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_exp ON {T} (listed, exp)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_issuer ON {T} (listed, issuer_key, name)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_kty ON {T} (listed, kty, name)",
        f"CREATE TABLE IF NOT EXISTS {SANS} ("
        " cert_id TEXT NOT NULL, san TEXT NOT NULL, PRIMARY KEY (cert_id, san))",
        f"CREATE INDEX IF NOT EXISTS {SANS}_by_san ON {SANS} (san)",
        f"CREATE TABLE IF NOT EXISTS {S} ("
        " cert_id TEXT NOT NULL, version TEXT NOT NULL, issuer TEXT, subject TEXT,"
        " issuer_dn TEXT, sans TEXT, kty TEXT, key_size INTEGER, crv TEXT, nbf TEXT, exp TEXT,"
        " PRIMARY KEY (cert_id, version))",
    )

    def _stage(self, rows: Rows, e: Any, **values: Any) -> None:
        rows.patch(S, (cid(e), e.version), **values)

    @on("Certificate.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        rows.put(T, {"cert_id": cid(e), "name": e.name, "listed": 0}, new=True)

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        rows.put(S, {"cert_id": cid(e), "version": e.version, "issuer": e.issuer_name}, new=True)

    @on("Certificate.KeyPairCreated")
    def key_pair(self, rows: Rows, e: Any) -> None:
        self._stage(rows, e, kty=e.kty, key_size=e.key_size, crv=e.crv)

    @on("Certificate.X509Merged")
    def merged(self, rows: Rows, e: Any) -> None:
        nbf, exp = iso_of(e, "not_before"), iso_of(e, "not_after")
        self._stage(rows, e, nbf=nbf, exp=exp, **describe(e.cert_der))

    @on("Certificate.CertificateImported")
    def imported(self, rows: Rows, e: Any) -> None:
        rows.put(
            S,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": "Unknown",
                "kty": e.kty,
                "key_size": e.key_size,
                "crv": e.crv,
                "nbf": iso_of(e, "not_before"),
                "exp": iso_of(e, "not_after"),
                **describe(e.cert_der),
            },
            new=True,
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        row = staged(rows, S, e)
        facts = {k: row[k] for k in FACTS}
        facts["issuer_key"] = (facts["issuer"] or "").lower()
        rows.patch(T, (cid(e),), **facts, version=e.version, listed=1, enabled=1)
        rows.delete_where(SANS, cid(e))
        for san in loads(row["sans"] or "[]"):
            rows.put(SANS, {"cert_id": cid(e), "san": san})
        rows.delete(S, cid(e), e.version)

    @on("Certificate.AttributesUpdated")
    def attributes(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e))
        if e.enabled is not None and row is not None and row["version"] == e.version:
            rows.patch(T, (cid(e),), enabled=int(e.enabled))

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, rows: Rows, e: Any) -> None:
        rows.delete(S, cid(e), e.version)

    @on("Certificate.Deleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        rows.patch(T, (cid(e),), listed=0)

    @on("Certificate.Recovered")
    def recovered(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e))
        if row is not None and row["version"] is not None:
            rows.patch(T, (cid(e),), listed=1)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        values: dict[str, Any] = dict.fromkeys((*FACTS, "issuer_key"))
        rows.patch(T, (cid(e),), **values, listed=0, version=None)
        rows.delete_where(SANS, cid(e))
        rows.delete_where(S, cid(e))
