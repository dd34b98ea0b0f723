"""Storage of wrapped data keys and encrypted blobs."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class SealedBlob:
    ref: str
    owner: str
    kind: str
    nonce: bytes
    ciphertext: bytes


class CustodyStore(Protocol):
    def get_data_key(self, owner: str) -> bytes | None: ...

    def add_data_key(self, owner: str, wrapped: bytes) -> bytes:
        """Store `wrapped` unless the owner has one; return the one stored."""
        ...

    def put_blob(self, blob: SealedBlob) -> None: ...

    def get_blob(self, ref: str) -> SealedBlob | None: ...

    def destroy_owner(self, owner: str) -> None: ...


class SqliteCustodyStore:
    """Custody tables in the ledger's SQLite file; deleted rows are overwritten."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS custody_data_keys ("
            " owner TEXT PRIMARY KEY, wrapped_key BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS custody_blobs ("
            " ref TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL,"
            " nonce BLOB NOT NULL, ciphertext BLOB NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS custody_blobs_owner ON custody_blobs(owner)")

    def get_data_key(self, owner: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT wrapped_key FROM custody_data_keys WHERE owner = ?", (owner,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def add_data_key(self, owner: str, wrapped: bytes) -> bytes:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO custody_data_keys (owner, wrapped_key) VALUES (?, ?)",
                (owner, wrapped),
            )
            row = self._db.execute(
                "SELECT wrapped_key FROM custody_data_keys WHERE owner = ?", (owner,)
            ).fetchone()
        return bytes(row[0])

    def put_blob(self, blob: SealedBlob) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO custody_blobs (ref, owner, kind, nonce, ciphertext)"
                " VALUES (?, ?, ?, ?, ?)",
                (blob.ref, blob.owner, blob.kind, blob.nonce, blob.ciphertext),
            )

    def get_blob(self, ref: str) -> SealedBlob | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ref, owner, kind, nonce, ciphertext FROM custody_blobs WHERE ref = ?",
                (ref,),
            ).fetchone()
        if row is None:
            return None
        return SealedBlob(row[0], row[1], row[2], bytes(row[3]), bytes(row[4]))

    def destroy_owner(self, owner: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM custody_blobs WHERE owner = ?", (owner,))
            self._db.execute("DELETE FROM custody_data_keys WHERE owner = ?", (owner,))
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
