"""Audit tables: leaves (written with the events), cached nodes and signed checkpoints.

`append_leaves` runs inside the event recorder's write transaction with any DB-API
cursor (`param` is the driver's placeholder), so a leaf exists exactly when its event
does. It reads the next position after the events are inserted, when the transaction
already holds the database's write lock (SQLite serialises writers; PostgreSQL's
recorder locks the events table), so positions stay dense from 0.

Tree nodes are not written there: `SqliteAuditStore.fill_nodes` caches the hash of every
complete perfect subtree of 16 leaves or more when a checkpoint or a proof needs it.
They are derived data, trusted by nobody: verification recomputes them from the events.

`SqliteAuditStore` is the read side (and the writer of nodes and checkpoints) on SQLite;
it is the only place that knows SQLite's `rowid` and the events table's layout.
`PostgresAuditStore` (`ledger/audit/postgres_store.py`) is the same on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.audit.hashing import (
    canonical_stream,
    fold_perfect,
    node_hash,
    stream_field,
    topic_prefix,
)
from ledger.audit.tree import TILE_HEIGHT, TILE_WIDTH

if TYPE_CHECKING:
    from ledger.audit.postgres_store import PostgresAuditStore
    from ledger.database import DatabaseUrl


def audit_schema(blob: str = "BLOB", integer: str = "INTEGER", schema: str = "") -> tuple[str, ...]:
    """The audit tables: SQLite's types by default; PostgreSQL's are BYTEA and BIGINT."""
    q = f'"{schema}".' if schema else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {q}audit_leaves ("
        f" position {integer} PRIMARY KEY, stream TEXT NOT NULL, version {integer} NOT NULL,"
        f" leaf_hash {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {q}audit_nodes ("
        f" level INTEGER NOT NULL, idx {integer} NOT NULL, hash {blob} NOT NULL,"
        " PRIMARY KEY (level, idx))",
        f"CREATE TABLE IF NOT EXISTS {q}audit_streams"
        " (stream TEXT PRIMARY KEY, label TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {q}audit_checkpoints ("
        f" tree_size {integer} PRIMARY KEY, root_hash {blob} NOT NULL, note TEXT NOT NULL,"
        " created TEXT NOT NULL)",
    )


AUDIT_SCHEMA = audit_schema()


_TAIL = struct.Struct(">QQI").pack
_TOPICS: dict[str, bytes] = {}


def _leaf_hash(position: int, s: StoredEvent) -> tuple[str, bytes]:
    """(canonical stream, leaf hash): `event_leaf_hash`, with the topic's encoding cached."""
    prefix = _TOPICS.get(s.topic)
    if prefix is None:
        if len(_TOPICS) > 1000:
            _TOPICS.clear()
        prefix = _TOPICS[s.topic] = topic_prefix(s.topic)
    stream = canonical_stream(s.originator_id)
    data = prefix + stream_field(stream) + _TAIL(s.originator_version, position, len(s.state))
    return stream, hashlib.sha256(data + s.state).digest()


def append_leaves(
    cursor: Any, stored_events: Sequence[StoredEvent], param: str = "?", schema: str = ""
) -> None:
    """Append one leaf per event at the next positions (read inside this transaction).

    `schema` qualifies the table (PostgreSQL); the cursor may return tuples or dicts.
    """
    if not stored_events:
        return
    p = param
    q = f'"{schema}".' if schema else ""
    cursor.execute(f"SELECT MAX(position) AS last FROM {q}audit_leaves")
    row = cursor.fetchone()
    last = row["last"] if isinstance(row, dict) else row[0]
    start = 0 if last is None else int(last) + 1
    rows = []
    for offset, s in enumerate(stored_events):
        stream, h = _leaf_hash(start + offset, s)
        rows.append((start + offset, stream, s.originator_version, h))
    cursor.executemany(
        f"INSERT INTO {q}audit_leaves (position, stream, version, leaf_hash)"
        f" VALUES ({p}, {p}, {p}, {p})",
        rows,
    )


def write_stream_labels(
    cursor: Any, labels: Sequence[tuple[str, str]], param: str = "?", schema: str = ""
) -> None:
    """Name new streams (`certificate 'web'`), so a report can name them once they are gone."""
    if not labels:
        return
    q = f'"{schema}".' if schema else ""
    cursor.executemany(
        f"INSERT INTO {q}audit_streams (stream, label) VALUES ({param}, {param})", labels
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


class StoredTree:
    """What both stores share: the node cache's filling and lookups by binary search.

    A store gives the SQL: leaves, cached nodes, and where an event is in the events table.
    """

    _lock: threading.RLock

    def size(self) -> int:
        raise NotImplementedError

    def leaf(self, position: int) -> LeafRow | None:
        raise NotImplementedError

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        raise NotImplementedError

    def cached_node(self, level: int, index: int) -> bytes | None:
        raise NotImplementedError

    def _highest_tile(self) -> int | None:
        """The index of the highest cached tile (level TILE_HEIGHT), if any."""
        raise NotImplementedError

    def _insert_nodes(self, nodes: list[tuple[int, int, bytes]]) -> None:
        """Cache (level, index, hash) rows, keeping any already there."""
        raise NotImplementedError

    def _event_rowid(self, stream: str, version: int) -> int | None:
        """The event's place in recording order (SQLite rowid, PostgreSQL notification id)."""
        raise NotImplementedError

    def fill_nodes(self, size: int, batch_tiles: int = 4096) -> int:
        """Cache every complete perfect subtree of 16+ leaves within `size`; how many new.

        Continues after the highest cached tile, so it reads only leaves added since.
        """
        tiles = size >> TILE_HEIGHT
        highest = self._highest_tile()
        first = 0 if highest is None else highest + 1
        if first >= tiles:
            return 0
        level_nodes: dict[int, bytes] = {}
        for t in range(first, tiles, batch_tiles):
            stop = min(tiles, t + batch_tiles)
            leaves = self.leaf_hashes(t << TILE_HEIGHT, stop << TILE_HEIGHT)
            for i in range(t, stop):
                offset = (i - t) << TILE_HEIGHT
                level_nodes[i] = fold_perfect(leaves[offset : offset + TILE_WIDTH])
        new: list[tuple[int, int, bytes]] = []
        level = TILE_HEIGHT
        while level_nodes:
            new += [(level, i, h) for i, h in level_nodes.items()]
            parents: dict[int, bytes] = {}
            for i in sorted(level_nodes):
                parent = i >> 1
                if parent in parents or (parent + 1) << (level + 1) > size:
                    continue
                left = level_nodes.get(2 * parent) or self.cached_node(level, 2 * parent)
                right = level_nodes.get(2 * parent + 1) or self.cached_node(level, 2 * parent + 1)
                if left is not None and right is not None:
                    parents[parent] = node_hash(left, right)
            level, level_nodes = level + 1, parents
        self._insert_nodes(new)
        return len(new)

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


class SqliteAuditStore(StoredTree):
    """Reads leaves, nodes and events from the ledger's SQLite file; keeps checkpoints."""

    cpus_per_job = 1

    def __init__(self, path: Path, events_table: str = "stored_events") -> None:
        self.path = path
        self.events_table = events_table
        self._events = events_table
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA mmap_size=1073741824")  # whole-log reads without a copy per page
        for statement in AUDIT_SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def worker_source(self) -> Callable[[], AbstractContextManager[SqliteAuditStore]]:
        """A worker reopens the file in a read transaction of its own."""
        return partial(sqlite_snapshot, self.path, self.events_table)

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

    def _highest_tile(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(idx) FROM audit_nodes WHERE level = ?", (TILE_HEIGHT,)
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def _insert_nodes(self, nodes: list[tuple[int, int, bytes]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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
        self, first: int | None = None, last: int | None = None, batch: int = 4096
    ) -> Iterator[list[tuple[str, int, str, bytes]]]:
        """Stored events in recording order, between rowids `first` and `last` (inclusive):
        (stored id, version, topic, state). Used inside `snapshot()`."""
        bounds = (-(2**63) if first is None else first, 2**63 - 1 if last is None else last)
        cursor = self._db.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self._events}"
            " WHERE rowid >= ? AND rowid <= ? ORDER BY rowid",
            bounds,
        )
        done = 0
        try:
            while rows := cursor.fetchmany(batch):
                done += len(rows)
                yield rows
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            # Text that is not UTF-8 (written around the ledger): read the rest as bytes,
            # decoded with replacement characters, so its leaf no longer matches and the
            # verifier names the position instead of stopping here.
            yield from self._iter_events_as_bytes(bounds, done, batch)

    def _iter_events_as_bytes(
        self, bounds: tuple[int, int], skip: int, batch: int
    ) -> Iterator[list[tuple[str, int, str, bytes]]]:
        cursor = self._db.execute(
            f"SELECT CAST(originator_id AS BLOB), originator_version, CAST(topic AS BLOB), state"
            f" FROM {self._events} WHERE rowid >= ? AND rowid <= ? ORDER BY rowid"
            " LIMIT -1 OFFSET ?",
            (*bounds, skip),
        )
        while rows := cursor.fetchmany(batch):
            yield [
                (_text(stream), version, _text(topic), state)
                for stream, version, topic, state in rows
            ]

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
        self.fill_nodes(count)
        return count


def _text(value: Any) -> Any:
    """A column read as bytes, as text (invalid UTF-8 replaced); other types as they are."""
    return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else value


@contextmanager
def sqlite_snapshot(path: Path, events_table: str) -> Iterator[SqliteAuditStore]:
    """A new store on the file, inside a read transaction (for a worker process)."""
    store = SqliteAuditStore(path, events_table)
    try:
        with store.snapshot():
            yield store
    finally:
        store.close()


AuditStore = Union["SqliteAuditStore", "PostgresAuditStore"]


def open_audit_store(url: DatabaseUrl) -> AuditStore:
    """The audit store of the ledger's database, SQLite file or PostgreSQL schema."""
    if url.is_sqlite:
        assert url.path is not None
        return SqliteAuditStore(url.path)
    from ledger.audit.postgres_store import PostgresAuditStore

    return PostgresAuditStore(url)
