"""Leases on operations: one worker at a time talks to a CA about an operation.

Optimistic concurrency already stops two workers from saving the same step twice; a lease
also stops the loser from reaching the CA first. A lease lapses after its time-to-live, or at
once when its holder was a process on this host that is no longer running (a killed worker).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path

LEASE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS worker_leases ("
    " operation TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL,"
    " pid INTEGER NOT NULL, expires REAL NOT NULL)",
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Leases:
    """Leases in the ledger's SQLite file; `holder` is unique to this object."""

    def __init__(self, path: Path, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.holder = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A lease lost in a power cut is harmless: the order book keeps orders unique.
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in LEASE_SCHEMA:
            self._db.execute(statement)
        self._held: set[str] = set()

    def acquire(self, operation: str) -> bool:
        """Take or renew the lease on `operation`; False when another live worker holds it."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT holder, host, pid, expires FROM worker_leases WHERE operation = ?",
                    (operation,),
                ).fetchone()
                if row is not None and row[0] != self.holder:
                    holder_dead = row[1] == self._host and not _alive(int(row[2]))
                    if row[3] > now and not holder_dead:
                        self._db.execute("ROLLBACK")
                        return False
                self._db.execute(
                    "INSERT OR REPLACE INTO worker_leases (operation, holder, host, pid, expires)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (operation, self.holder, self._host, self._pid, now + self.ttl),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._held.add(operation)
            return True

    def holds(self, operation: str) -> bool:
        return operation in self._held

    def release(self, operation: str) -> None:
        with self._lock:
            if operation in self._held:
                self._held.discard(operation)
                self._db.execute(
                    "DELETE FROM worker_leases WHERE operation = ? AND holder = ?",
                    (operation, self.holder),
                )

    def close(self) -> None:
        with self._lock:
            for operation in list(self._held):
                self._db.execute(
                    "DELETE FROM worker_leases WHERE operation = ? AND holder = ?",
                    (operation, self.holder),
                )
            self._held.clear()
            self._db.close()
