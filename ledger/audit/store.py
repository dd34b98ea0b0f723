"""Audit tables: leaves (written with the events), cached nodes and signed checkpoints.

`append_leaves` runs inside the event recorder's write transaction with any DB-API
cursor (`param` is the driver's placeholder), so a leaf exists exactly when its event
does. It reads the next position after the events are inserted, when the transaction
already holds the database's write lock (SQLite serialises writers; PostgreSQL's
recorder locks the events table), so positions stay dense from 0.

`SqliteAuditStore` is the read side (and the checkpoint table's writer) on SQLite;
it is the only place that knows SQLite's `rowid` and the events table's layout.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.audit.hashing import canonical_stream, event_leaf_hash, fold_perfect, node_hash
from ledger.audit.tree import TILE_HEIGHT, TILE_WIDTH

AUDIT_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_leaves ("
    " position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,"
    " leaf_hash BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_nodes ("
    " level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx))",
    "CREATE TABLE IF NOT EXISTS audit_streams (stream TEXT PRIMARY KEY, label TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints ("
    " tree_size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL,"
    " created TEXT NOT NULL)",
)


def append_leaves(cursor: Any, stored_events: Sequence[StoredEvent], param: str = "?") -> None:
    """Append one leaf per event at the next positions; cache nodes of completed tiles."""
    if not stored_events:
        return
    p = param
    cursor.execute("SELECT MAX(position) FROM audit_leaves")
    last = cursor.fetchone()[0]
    start = 0 if last is None else int(last) + 1
    rows = []
    hashes = []
    for offset, s in enumerate(stored_events):
        stream = canonical_stream(s.originator_id)
        h = event_leaf_hash(start + offset, stream, s.originator_version, s.topic, s.state)
        rows.append((start + offset, stream, s.originator_version, h))
        hashes.append(h)
    cursor.executemany(
        "INSERT INTO audit_leaves (position, stream, version, leaf_hash)"
        f" VALUES ({p}, {p}, {p}, {p})",
        rows,
    )
    end = start + len(rows)
    for tile in range(start // TILE_WIDTH, end // TILE_WIDTH):
        _cache_tile(cursor, p, tile, start, hashes)


def write_stream_labels(cursor: Any, labels: Sequence[tuple[str, str]], param: str = "?") -> None:
    """Name new streams (`certificate 'web'`), so a report can name them once they are gone."""
    if not labels:
        return
    cursor.executemany(
        f"INSERT INTO audit_streams (stream, label) VALUES ({param}, {param})", labels
    )


def _cache_tile(cursor: Any, p: str, tile: int, start: int, new: list[bytes]) -> None:
    """Store the completed tile's hash, then every perfect subtree it completes above it."""
    lo = tile * TILE_WIDTH
    if lo >= start:
        leaves = new[lo - start : lo - start + TILE_WIDTH]
    else:
        cursor.execute(
            f"SELECT leaf_hash FROM audit_leaves WHERE position >= {p} AND position < {p}"
            " ORDER BY position",
            (lo, start),
        )
        leaves = [bytes(r[0]) for r in cursor.fetchall()] + new[: lo + TILE_WIDTH - start]
    h = fold_perfect(leaves)
    level, index = TILE_HEIGHT, tile
    _put_node(cursor, p, level, index, h)
    while index & 1:
        cursor.execute(
            f"SELECT hash FROM audit_nodes WHERE level = {p} AND idx = {p}", (level, index - 1)
        )
        row = cursor.fetchone()
        if row is None:
            return  # a gap in the cache: readers recompute from the leaves
        h = node_hash(bytes(row[0]), h)
        level, index = level + 1, index >> 1
        _put_node(cursor, p, level, index, h)


def _put_node(cursor: Any, p: str, level: int, index: int, h: bytes) -> None:
    cursor.execute(f"DELETE FROM audit_nodes WHERE level = {p} AND idx = {p}", (level, index))
    cursor.execute(
        f"INSERT INTO audit_nodes (level, idx, hash) VALUES ({p}, {p}, {p})", (level, index, h)
    )


@dataclass(frozen=True)
class LeafRow:
    position: int
    stream: str
    version: int
    leaf_hash: bytes


@dataclass(frozen=True)
class EventRow:
    """A stored event exactly as stored (stream in canonical UUID text)."""

    stream: str
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root: bytes
    note: str
    created: str


class SqliteAuditStore:
    """Reads leaves, nodes and events from the ledger's SQLite file; keeps checkpoints."""

    def __init__(self, path: Path, events_table: str = "stored_events") -> None:
        self.path = path
        self.events_table = events_table
        self._events = events_table
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in AUDIT_SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one state of the database (a read transaction)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    # -- the tree (HashSource) --------------------------------------------

    def size(self) -> int:
        with self._lock:
            last = self._db.execute("SELECT MAX(position) FROM audit_leaves").fetchone()[0]
        return 0 if last is None else int(last) + 1

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT leaf_hash FROM audit_leaves WHERE position >= ? AND position < ?"
                " ORDER BY position",
                (start, stop),
            ).fetchall()
        if len(rows) != stop - start:
            raise LookupError(f"leaves {start} to {stop - 1} are not all stored")
        return [bytes(r[0]) for r in rows]

    def cached_node(self, level: int, index: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def leaf(self, position: int) -> LeafRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT position, stream, version, leaf_hash FROM audit_leaves WHERE position = ?",
                (position,),
            ).fetchone()
        return None if row is None else LeafRow(row[0], row[1], row[2], bytes(row[3]))

    def _event_rowid(self, stream: str, version: int) -> int | None:
        row = self._db.execute(
            f"SELECT rowid FROM {self._events} WHERE originator_id = ? AND originator_version = ?",
            (UUID(stream).hex, version),
        ).fetchone()
        return None if row is None else int(row[0])

    def position_of(self, stream: str, version: int, low: int = 0) -> int | None:
        """The leaf position of an event, by binary search (positions follow rowids).

        None when the event or its leaf is not found, as in a damaged log.
        """
        with self._lock:
            target = self._event_rowid(stream, version)
            if target is None:
                return None
            high = self.size() - 1
            while low <= high:
                middle = (low + high) // 2
                leaf = self.leaf(middle)
                if leaf is None:
                    return None
                if (leaf.stream, leaf.version) == (stream, version):
                    return middle
                found = self._event_rowid(leaf.stream, leaf.version)
                if found is None:
                    return None
                if found < target:
                    low = middle + 1
                else:
                    high = middle - 1
        return None

    def leaf_rows(self, start: int, stop: int) -> list[LeafRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT position, stream, version, leaf_hash FROM audit_leaves"
                " WHERE position >= ? AND position < ? ORDER BY position",
                (start, stop),
            ).fetchall()
        return [LeafRow(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def leaf_extent(self) -> tuple[int, int]:
        """(number of leaf rows, highest position + 1): equal when positions are dense."""
        with self._lock:
            count, last = self._db.execute(
                "SELECT COUNT(*), MAX(position) FROM audit_leaves"
            ).fetchone()
        return int(count), (-1 if last is None else int(last)) + 1

    def first_missing_position(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT a.position + 1 FROM audit_leaves a WHERE NOT EXISTS"
                " (SELECT 1 FROM audit_leaves b WHERE b.position = a.position + 1)"
                " ORDER BY a.position LIMIT 1"
            ).fetchone()
            first = self._db.execute("SELECT MIN(position) FROM audit_leaves").fetchone()[0]
        if first is not None and first > 0:
            return 0
        return None if row is None else int(row[0])

    def iter_tile_nodes(
        self, first: int = 0, stop: int = 2**63 - 1, batch: int = 20000
    ) -> Iterator[tuple[int, bytes]]:
        """The cached hash of tiles first <= index < stop, by index (inside `snapshot()`)."""
        cursor = self._db.execute(
            "SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ?"
            " ORDER BY idx",
            (TILE_HEIGHT, first, stop),
        )
        while rows := cursor.fetchmany(batch):
            for idx, h in rows:
                yield int(idx), bytes(h)

    def stream_label(self, stream: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT label FROM audit_streams WHERE stream = ?", (stream,)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- the events, as stored ------------------------------------------------

    def event_count(self) -> int:
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {self._events}").fetchone()[0])

    def iter_events(
        self, first: int | None = None, last: int | None = None, batch: int = 20000
    ) -> Iterator[list[tuple[str, int, str, bytes]]]:
        """Stored events in recording order, between rowids `first` and `last` (inclusive):
        (stored id, version, topic, state). Used inside `snapshot()`."""
        cursor = self._db.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self._events}"
            " WHERE rowid >= ? AND rowid <= ? ORDER BY rowid",
            (-(2**63) if first is None else first, 2**63 - 1 if last is None else last),
        )
        while rows := cursor.fetchmany(batch):
            yield rows

    def rowid_hints(self, positions: Sequence[int]) -> list[int | None]:
        """The rowid of the event each position's leaf row names (None if there is none).

        A hint only: a damaged log may name the wrong event; callers check event counts.
        """
        found: list[int | None] = []
        with self._lock:
            for position in positions:
                leaf = self.leaf(position)
                found.append(None if leaf is None else self._event_rowid(leaf.stream, leaf.version))
        return found

    def stream_at(self, position: int) -> str | None:
        """The stream of the event stored at `position` in recording order (rowid order)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT originator_id FROM {self._events} ORDER BY rowid LIMIT 1 OFFSET ?",
                (position,),
            ).fetchone()
        return None if row is None else canonical_stream(row[0])

    def events_of_stream(self, stream: str) -> list[EventRow]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT originator_version, topic, state FROM {self._events}"
                " WHERE originator_id = ? ORDER BY originator_version",
                (UUID(stream).hex,),
            ).fetchall()
        return [EventRow(stream, r[0], r[1], bytes(r[2])) for r in rows]

    def event(self, stream: str, version: int) -> EventRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT topic, state FROM {self._events}"
                " WHERE originator_id = ? AND originator_version = ?",
                (UUID(stream).hex, version),
            ).fetchone()
        return None if row is None else EventRow(stream, version, row[0], bytes(row[1]))

    # -- checkpoints ----------------------------------------------------------

    def add_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO audit_checkpoints (tree_size, root_hash, note, created)"
                " VALUES (?, ?, ?, ?)",
                (size, root, note, created),
            )

    def checkpoints(self) -> list[CheckpointRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT tree_size, root_hash, note, created FROM audit_checkpoints"
                " ORDER BY tree_size"
            ).fetchall()
        return [CheckpointRow(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    def latest_checkpoint(self) -> CheckpointRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tree_size, root_hash, note, created FROM audit_checkpoints"
                " ORDER BY tree_size DESC LIMIT 1"
            ).fetchone()
        return None if row is None else CheckpointRow(row[0], bytes(row[1]), row[2], row[3])

    # -- a ledger recorded before the audit log existed -----------------------

    def backfill(self) -> int:
        """Leaves for events stored before the audit log existed; only on an empty log."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM audit_leaves LIMIT 1").fetchone() or not (
                self._db.execute(f"SELECT 1 FROM {self._events} LIMIT 1").fetchone()
            ):
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                has_leaves = self._db.execute("SELECT 1 FROM audit_leaves LIMIT 1").fetchone()
                has_checkpoints = self._db.execute(
                    "SELECT 1 FROM audit_checkpoints LIMIT 1"
                ).fetchone()
                if has_leaves or has_checkpoints:
                    self._db.execute("ROLLBACK")
                    return 0
                count = 0
                cursor = self._db.cursor()
                for rows in self.iter_events():
                    events = [StoredEvent(UUID(r[0]), r[1], r[2], bytes(r[3])) for r in rows]
                    append_leaves(cursor, events)
                    count += len(events)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return count
