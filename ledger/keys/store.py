"""Custody rows: wrapped data keys, encrypted blobs and the owners of HSM keys.

Rows are written by the event recorder in the same transaction as the events
that reference them, so a key exists exactly when its KeyPairCreated does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ledger.database import Db


@dataclass(frozen=True)
class DataKeyRow:
    owner: str
    wrapped_key: bytes


@dataclass(frozen=True)
class SealedBlob:
    ref: str
    owner: str
    kind: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedBlob(ref={self.ref!r}, owner={self.owner!r}, kind={self.kind!r})"


@dataclass(frozen=True)
class HsmKeyRow:
    """A key pair held by a PKCS#11 token: only its id and owner are kept here."""

    key_id: str
    owner: str


CustodyRow = DataKeyRow | SealedBlob | HsmKeyRow


def custody_schema(blob_type: str = "BLOB") -> tuple[str, ...]:
    """Custody tables; PostgreSQL spells BLOB as BYTEA."""
    return (
        "CREATE TABLE IF NOT EXISTS custody_data_keys ("
        f" owner TEXT PRIMARY KEY, wrapped_key {blob_type} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS custody_blobs ("
        " ref TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL,"
        f" nonce {blob_type} NOT NULL, ciphertext {blob_type} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS custody_blobs_owner ON custody_blobs(owner)",
        "CREATE TABLE IF NOT EXISTS custody_hsm_keys ("
        " key_id TEXT PRIMARY KEY, owner TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS custody_hsm_keys_owner ON custody_hsm_keys(owner)",
    )


def write_custody_rows(
    cursor: Any, rows: tuple[CustodyRow, ...], param: str = "?", schema: str = ""
) -> None:
    """Insert rows with a DB-API cursor (`param` is the driver's placeholder)."""
    p = param
    q = f'"{schema}".' if schema else ""
    for row in rows:
        if isinstance(row, DataKeyRow):
            cursor.execute(
                f"INSERT INTO {q}custody_data_keys (owner, wrapped_key) VALUES ({p}, {p})",
                (row.owner, row.wrapped_key),
            )
        elif isinstance(row, HsmKeyRow):
            cursor.execute(
                f"INSERT INTO {q}custody_hsm_keys (key_id, owner) VALUES ({p}, {p})",
                (row.key_id, row.owner),
            )
        else:
            cursor.execute(
                f"INSERT INTO {q}custody_blobs (ref, owner, kind, nonce, ciphertext)"
                f" VALUES ({p}, {p}, {p}, {p}, {p})",
                (row.ref, row.owner, row.kind, row.nonce, row.ciphertext),
            )


class CustodyStore(Protocol):
    def get_data_key(self, owner: str) -> bytes | None: ...

    def get_blob(self, ref: str) -> SealedBlob | None: ...

    def blobs_of(self, owner: str) -> list[SealedBlob]: ...

    def destroy_owner(self, owner: str) -> None: ...

    def close(self) -> None: ...


class SqlCustodyStore:
    """Reads custody rows from the ledger's database; deletions overwrite the bytes."""

    def __init__(self, db: Db) -> None:
        self._db = db
        with db.transaction() as cur:
            cur.lock_schema()
            for statement in custody_schema("BLOB" if db.url.is_sqlite else "BYTEA"):
                cur.execute(statement)

    def get_data_key(self, owner: str) -> bytes | None:
        rows = self._db.execute(
            "SELECT wrapped_key FROM custody_data_keys WHERE owner = ?", (owner,)
        )
        return bytes(rows[0][0]) if rows else None

    def get_blob(self, ref: str) -> SealedBlob | None:
        rows = self._db.execute(
            "SELECT ref, owner, kind, nonce, ciphertext FROM custody_blobs WHERE ref = ?", (ref,)
        )
        if not rows:
            return None
        row = rows[0]
        return SealedBlob(row[0], row[1], row[2], bytes(row[3]), bytes(row[4]))

    def hsm_key_ids(self, owner: str) -> list[str]:
        """The ids of `owner`'s key pairs on a PKCS#11 token."""
        rows = self._db.execute(
            "SELECT key_id FROM custody_hsm_keys WHERE owner = ? ORDER BY key_id", (owner,)
        )
        return [str(row[0]) for row in rows]

    def blobs_of(self, owner: str) -> list[SealedBlob]:
        rows = self._db.execute(
            "SELECT ref, owner, kind, nonce, ciphertext FROM custody_blobs WHERE owner = ?"
            " ORDER BY ref",
            (owner,),
        )
        return [SealedBlob(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in rows]

    def destroy_owner(self, owner: str) -> None:
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM custody_blobs WHERE owner = ?", (owner,))
            cur.execute("DELETE FROM custody_data_keys WHERE owner = ?", (owner,))
            cur.execute("DELETE FROM custody_hsm_keys WHERE owner = ?", (owner,))
        if self._db.url.is_sqlite:
            # Checkpoint so the deleted pages leave the WAL too.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()
