"""A searchable inventory of current certificates: subject, SAN, issuer, key type, expiry."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography import x509

from ledger.database import Cursor
from projections.view import View, cid, insert, iso, js, on, update

T = "v_inventory"
SANS = "v_inventory_sans"
S = "v_inventory_staged"
FACTS = ("issuer", "subject", "issuer_dn", "kty", "key_size", "crv", "nbf", "exp")


def describe(cert_der: str) -> dict[str, Any]:
    """Subject, issuer DN and SANs of a certificate, lower-cased where matching is by name."""
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_der))
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v).lower() for v in ext.get_values_for_type(x509.DNSName)]
        sans += [str(v).lower() for v in ext.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        pass
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer_dn": cert.issuer.rfc4514_string(),
        "sans": js(sans),
    }


class InventoryView(View):
    name = "inventory"
    tables = (T, SANS, S)
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

    def _stage(self, cur: Cursor, e: Any, **values: Any) -> None:
        update(cur, S, {"cert_id": cid(e), "version": e.version}, values)

    @on("Certificate.Registered")
    def registered(self, cur: Cursor, e: Any) -> None:
        insert(cur, T, {"cert_id": cid(e), "name": e.name, "listed": 0})

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        insert(cur, S, {"cert_id": cid(e), "version": e.version, "issuer": e.issuer_name})

    @on("Certificate.KeyPairCreated")
    def key_pair(self, cur: Cursor, e: Any) -> None:
        self._stage(cur, e, kty=e.kty, key_size=e.key_size, crv=e.crv)

    @on("Certificate.X509Merged")
    def merged(self, cur: Cursor, e: Any) -> None:
        self._stage(cur, e, nbf=iso(e.not_before), exp=iso(e.not_after), **describe(e.cert_der))

    @on("Certificate.CertificateImported")
    def imported(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            S,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": "Unknown",
                "kty": e.kty,
                "key_size": e.key_size,
                "crv": e.crv,
                "nbf": iso(e.not_before),
                "exp": iso(e.not_after),
                **describe(e.cert_der),
            },
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, cur: Cursor, e: Any) -> None:
        rows = cur.execute(
            f"SELECT {', '.join(FACTS)}, sans FROM {S} WHERE cert_id = ? AND version = ?",
            [cid(e), e.version],
        )
        facts = dict(zip(FACTS, rows[0][:-1], strict=True))
        facts["issuer_key"] = (facts["issuer"] or "").lower()
        update(
            cur, T, {"cert_id": cid(e)}, {**facts, "version": e.version, "listed": 1, "enabled": 1}
        )
        cur.execute(f"DELETE FROM {SANS} WHERE cert_id = ?", [cid(e)])
        cur.executemany(
            f"INSERT INTO {SANS} (cert_id, san) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(cid(e), san) for san in json.loads(rows[0][-1] or "[]")],
        )
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ? AND version = ?", [cid(e), e.version])

    @on("Certificate.AttributesUpdated")
    def attributes(self, cur: Cursor, e: Any) -> None:
        if e.enabled is not None:
            update(cur, T, {"cert_id": cid(e), "version": e.version}, {"enabled": int(e.enabled)})

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ? AND version = ?", [cid(e), e.version])

    @on("Certificate.Deleted")
    def deleted(self, cur: Cursor, e: Any) -> None:
        update(cur, T, {"cert_id": cid(e)}, {"listed": 0})

    @on("Certificate.Recovered")
    def recovered(self, cur: Cursor, e: Any) -> None:
        cur.execute(
            f"UPDATE {T} SET listed = 1 WHERE cert_id = ? AND version IS NOT NULL", [cid(e)]
        )

    @on("Certificate.Purged")
    def purged(self, cur: Cursor, e: Any) -> None:
        values: dict[str, Any] = dict.fromkeys((*FACTS, "issuer_key"))
        update(cur, T, {"cert_id": cid(e)}, {**values, "listed": 0, "version": None})
        cur.execute(f"DELETE FROM {SANS} WHERE cert_id = ?", [cid(e)])
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ?", [cid(e)])
