"""Leases on operations: one worker at a time talks to a CA about an operation.

Optimistic concurrency already stops two workers from saving the same step twice; a lease
also stops the loser from reaching the CA first. A lease lapses after its time-to-live, or at
once when its holder was a process on this host that is no longer running (a killed worker).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from ledger.database import Db

LEASE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS worker_leases ("
    " operation TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL,"
    " pid INTEGER NOT NULL, expires DOUBLE PRECISION NOT NULL)",
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
    """Leases in the ledger's database; `holder` is unique to this object."""

    def __init__(self, db: Db, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.holder = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._db = db
        # A lease outlives no crash of the machine that holds it (its holders die too):
        # its commits need not wait for the disk.
        db.relax()
        with db.transaction() as cur:
            cur.lock_schema()
            for statement in LEASE_SCHEMA:
                cur.execute(statement)
        self._held: set[str] = set()

    def acquire(self, operation: str) -> bool:
        """Take or renew the lease on `operation`; False when another live worker holds it."""
        now = time.time()
        with self._lock, self._db.transaction() as cur:
            cur.lock_key(operation)
            rows = cur.execute(
                "SELECT holder, host, pid, expires FROM worker_leases WHERE operation = ?",
                [operation],
            )
            if rows and rows[0][0] != self.holder:
                _, host, pid, expires = rows[0]
                holder_dead = host == self._host and not _alive(int(pid))
                if float(expires) > now and not holder_dead:
                    return False
            cur.execute(
                "INSERT INTO worker_leases (operation, holder, host, pid, expires)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (operation) DO UPDATE SET"
                " holder = excluded.holder, host = excluded.host, pid = excluded.pid,"
                " expires = excluded.expires",
                [operation, self.holder, self._host, self._pid, now + self.ttl],
            )
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
