"""The managed key and secret of each version: metadata only, never a value."""

from __future__ import annotations

from typing import Any

from ledger.database import Cursor
from projections.view import View, at, cid, insert, iso, js, on, update

T = "v_managed"
KINDS = ("key", "secret")


class ManagedView(View):
    """Two rows per version (key, secret); addressable once the version is promoted."""

    name = "managed"
    tables = (T,)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT NOT NULL, version TEXT NOT NULL, kind TEXT NOT NULL,"
        " addressable INTEGER NOT NULL, kty TEXT, key_size INTEGER, crv TEXT,"
        " public_key_pem TEXT, content_type TEXT, exportable INTEGER, enabled INTEGER NOT NULL,"
        " nbf TEXT, exp TEXT, tags TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,"
        " PRIMARY KEY (cert_id, version, kind))",
    )

    def _set(self, cur: Cursor, e: Any, **values: Any) -> None:
        update(cur, T, {"cert_id": cid(e), "version": e.version}, values)

    def _rows(self, cur: Cursor, e: Any, **values: Any) -> None:
        for kind in KINDS:
            insert(cur, T, {"cert_id": cid(e), "version": e.version, "kind": kind, **values})

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        when = at(e)
        self._rows(
            cur,
            e,
            addressable=0,
            content_type=e.content_type,
            enabled=1,
            tags=js(e.tags),
            created=when,
            updated=when,
        )

    @on("Certificate.KeyPairCreated")
    def key_pair(self, cur: Cursor, e: Any) -> None:
        self._set(
            cur,
            e,
            kty=e.kty,
            key_size=e.key_size,
            crv=e.crv,
            public_key_pem=e.public_key_pem,
            exportable=int(e.exportable),
        )

    @on("Certificate.X509Merged")
    def merged(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, nbf=iso(e.not_before), exp=iso(e.not_after), updated=at(e))

    @on("Certificate.CertificateImported")
    def imported(self, cur: Cursor, e: Any) -> None:
        when = at(e)
        self._rows(
            cur,
            e,
            addressable=0,
            kty=e.kty,
            key_size=e.key_size,
            crv=e.crv,
            public_key_pem=e.public_key_pem,
            content_type=e.content_type,
            exportable=1,
            enabled=1,
            nbf=iso(e.not_before),
            exp=iso(e.not_after),
            tags=js({}),
            created=when,
            updated=when,
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, addressable=1)

    @on("Certificate.AttributesUpdated")
    def attributes(self, cur: Cursor, e: Any) -> None:
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        self._set(cur, e, **values)

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, cur: Cursor, e: Any) -> None:
        cur.execute(
            f"DELETE FROM {T} WHERE cert_id = ? AND version = ? AND addressable = 0",
            [cid(e), e.version],
        )

    @on("Certificate.Purged")
    def purged(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {T} WHERE cert_id = ?", [cid(e)])
