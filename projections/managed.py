"""The managed key and secret of each version: metadata only, never a value."""

from __future__ import annotations

from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, iso_of, js, on

T = "v_managed"


class ManagedView(View):
    """One row per version for its key and secret (they share every attribute);
    addressable once the version is promoted."""

    name = "managed"
    revision = 2  # was a row per kind
    keys = {T: ("cert_id", "version")}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT NOT NULL, version TEXT NOT NULL,"
        " addressable INTEGER NOT NULL, kty TEXT, key_size INTEGER, crv TEXT,"
        " public_key_pem TEXT, content_type TEXT, exportable INTEGER, enabled INTEGER NOT NULL,"
        " nbf TEXT, exp TEXT, tags TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,"
        " PRIMARY KEY (cert_id, version))",
    )

    def _set(self, rows: Rows, e: Any, **values: Any) -> None:
        rows.patch(T, (cid(e), e.version), **values)

    def _rows(self, rows: Rows, e: Any, **values: Any) -> None:
        rows.put(T, {"cert_id": cid(e), "version": e.version, **values}, new=True)

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        when = at(e)
        self._rows(
            rows,
            e,
            addressable=0,
            content_type=e.content_type,
            enabled=1,
            tags=js(e.tags),
            created=when,
            updated=when,
        )

    @on("Certificate.KeyPairCreated")
    def key_pair(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            kty=e.kty,
            key_size=e.key_size,
            crv=e.crv,
            public_key_pem=e.public_key_pem,
            exportable=int(e.exportable),
        )

    @on("Certificate.X509Merged")
    def merged(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, nbf=iso_of(e, "not_before"), exp=iso_of(e, "not_after"), updated=at(e))

    @on("Certificate.CertificateImported")
    def imported(self, rows: Rows, e: Any) -> None:
        when = at(e)
        self._rows(
            rows,
            e,
            addressable=0,
            kty=e.kty,
            key_size=e.key_size,
            crv=e.crv,
            public_key_pem=e.public_key_pem,
            content_type=e.content_type,
            exportable=1,
            enabled=1,
            nbf=iso_of(e, "not_before"),
            exp=iso_of(e, "not_after"),
            tags="{}",
            created=when,
            updated=when,
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, addressable=1)

    @on("Certificate.AttributesUpdated")
    def attributes(self, rows: Rows, e: Any) -> None:
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        self._set(rows, e, **values)

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e), e.version)
        if row is not None and not row["addressable"]:
            rows.delete(T, cid(e), e.version)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        rows.delete_where(T, cid(e))
