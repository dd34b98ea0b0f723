"""The audit store on PostgreSQL: the same reads and writes as `SqliteAuditStore`.

The tables live in the ledger's schema beside `ledger_events`, whose `notification_id`
plays the part of SQLite's rowid (recording order). The recorder creates the tables and
writes the leaves; this store reads them, and writes cached nodes and checkpoints.
A snapshot is a REPEATABLE READ transaction, so a verification reads one state.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from ledger.audit.hashing import canonical_stream
from ledger.audit.store import (
    CheckpointRow,
    EventRow,
    LeafRow,
    StoredTree,
    append_leaves,
)
from ledger.audit.tree import TILE_HEIGHT
from ledger.database import DatabaseUrl

EVENTS_TABLE = "ledger_events"
_CURSORS = itertools.count()


Rows = list[tuple[Any, ...]]


def read_ahead(fetch: Callable[[], Rows], depth: int = 2) -> Iterator[Rows]:
    """The batches `fetch` returns until an empty one, fetched by a thread ahead of use."""
    ready: queue.Queue[Rows | BaseException] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                rows = fetch()
                ready.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed to the reader
            ready.put(exc)

    thread = threading.Thread(target=run, name="audit-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock its put; it stops after the fetch under way
            with suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()


class PostgresAuditStore(StoredTree):
    """Reads leaves, nodes and events from the ledger's schema; keeps checkpoints."""

    cpus_per_job = 2  # the worker, and the server process that reads for it

    def __init__(self, url: DatabaseUrl, events_table: str = EVENTS_TABLE) -> None:
        self.url = url
        self.events_table = events_table
        self.schema = url.schema
        q = f'"{url.schema}".'
        self._events = f"{q}{events_table}"
        self._leaves, self._nodes = f"{q}audit_leaves", f"{q}audit_nodes"
        self._streams, self._checkpoints = f"{q}audit_streams", f"{q}audit_checkpoints"
        self._lock = threading.RLock()
        self._conn = psycopg.connect(url.conninfo(), autocommit=True)
        self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchone()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one state of the database (a read transaction)."""
        with self._lock, self._conn.transaction():
            yield

    def worker_source(self) -> Callable[[], AbstractContextManager[PostgresAuditStore]] | None:
        """Inside `snapshot()`: a worker opens its own connection at this very snapshot."""
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            return None
        row = self._one("SELECT pg_export_snapshot()")
        assert row is not None
        return partial(postgres_snapshot, self.url, self.events_table, str(row[0]))

    # -- the tree (HashSource) --------------------------------------------

    def size(self) -> int:
        row = self._one(f"SELECT MAX(position) FROM {self._leaves}")
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self._all(
            f"SELECT leaf_hash FROM {self._leaves} WHERE position >= %s AND position < %s"
            " ORDER BY position",
            (start, stop),
        )
        if len(rows) != stop - start:
            raise LookupError(f"leaves {start} to {stop - 1} are not all stored")
        return [bytes(r[0]) for r in rows]

    def cached_node(self, level: int, index: int) -> bytes | None:
        row = self._one(
            f"SELECT hash FROM {self._nodes} WHERE level = %s AND idx = %s", (level, index)
        )
        return None if row is None else bytes(row[0])

    def _highest_tile(self) -> int | None:
        row = self._one(f"SELECT MAX(idx) FROM {self._nodes} WHERE level = %s", (TILE_HEIGHT,))
        return None if row is None or row[0] is None else int(row[0])

    def _insert_nodes(self, nodes: list[tuple[int, int, bytes]]) -> None:
        if not nodes:
            return
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self._nodes} (level, idx, hash) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                nodes,
            )

    def leaf(self, position: int) -> LeafRow | None:
        row = self._one(
            f"SELECT position, stream, version, leaf_hash FROM {self._leaves} WHERE position = %s",
            (position,),
        )
        return None if row is None else LeafRow(row[0], row[1], row[2], bytes(row[3]))

    def _event_rowid(self, stream: str, version: int) -> int | None:
        try:
            sid = UUID(stream)
        except ValueError:
            return None
        row = self._one(
            f"SELECT notification_id FROM {self._events}"
            " WHERE originator_id = %s AND originator_version = %s",
            (sid, version),
        )
        return None if row is None else int(row[0])

    def leaf_rows(self, start: int, stop: int) -> list[LeafRow]:
        rows = self._all(
            f"SELECT position, stream, version, leaf_hash FROM {self._leaves}"
            " WHERE position >= %s AND position < %s ORDER BY position",
            (start, stop),
        )
        return [LeafRow(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def leaf_extent(self) -> tuple[int, int]:
        """(number of leaf rows, highest position + 1): equal when positions are dense."""
        row = self._one(f"SELECT COUNT(*), MAX(position) FROM {self._leaves}")
        assert row is not None
        count, last = row
        return int(count), (-1 if last is None else int(last)) + 1

    def first_missing_position(self) -> int | None:
        row = self._one(
            f"SELECT a.position + 1 FROM {self._leaves} a WHERE NOT EXISTS"
            f" (SELECT 1 FROM {self._leaves} b WHERE b.position = a.position + 1)"
            " ORDER BY a.position LIMIT 1"
        )
        first = self._one(f"SELECT MIN(position) FROM {self._leaves}")
        if first is not None and first[0] is not None and first[0] > 0:
            return 0
        return None if row is None else int(row[0])

    def iter_tile_nodes(
        self, first: int = 0, stop: int = 2**63 - 1, batch: int = 20000
    ) -> Iterator[tuple[int, bytes]]:
        """The cached hash of tiles first <= index < stop, by index."""
        while first < stop:
            rows = self._all(
                f"SELECT idx, hash FROM {self._nodes} WHERE level = %s AND idx >= %s"
                " AND idx < %s ORDER BY idx LIMIT %s",
                (TILE_HEIGHT, first, stop, batch),
            )
            for idx, h in rows:
                yield int(idx), bytes(h)
            if len(rows) < batch:
                return
            first = int(rows[-1][0]) + 1

    def stream_label(self, stream: str) -> str | None:
        row = self._one(f"SELECT label FROM {self._streams} WHERE stream = %s", (stream,))
        return None if row is None else str(row[0])

    # -- the events, as stored ------------------------------------------------

    def event_count(self) -> int:
        row = self._one(f"SELECT COUNT(*) FROM {self._events}")
        assert row is not None
        return int(row[0])

    def iter_events(
        self, first: int | None = None, last: int | None = None, batch: int = 4096
    ) -> Iterator[list[tuple[str, int, str, bytes]]]:
        """Stored events in recording order, between notification ids `first` and `last`
        (inclusive): (stored id, version, topic, state). Used inside `snapshot()`.

        One query through a server-side cursor in binary format: batches come as bytes and
        ints, without hex decoding or a new query (and its index descent) per batch; a
        thread fetches the next batch meanwhile (psycopg waits without the GIL).
        """
        low = -(2**63) if first is None else first
        high = 2**63 - 1 if last is None else last
        with self._lock, self._conn.transaction():
            name = f"audit_events_{next(_CURSORS)}"
            with self._conn.cursor(name, binary=True) as cursor:
                cursor.execute(
                    f"SELECT originator_id::text, originator_version, topic, state"
                    f" FROM {self._events} WHERE notification_id >= %s"
                    " AND notification_id <= %s ORDER BY notification_id",
                    (low, high),
                )
                # The server reads the next batch while this thread hashes the last one.
                yield from read_ahead(lambda: cursor.fetchmany(batch))

    def stream_at(self, position: int) -> str | None:
        """The stream of the event stored at `position` in recording order."""
        row = self._one(
            f"SELECT originator_id::text FROM {self._events}"
            " ORDER BY notification_id LIMIT 1 OFFSET %s",
            (position,),
        )
        return None if row is None else canonical_stream(row[0])

    def events_of_stream(self, stream: str) -> list[EventRow]:
        rows = self._all(
            f"SELECT originator_version, topic, state FROM {self._events}"
            " WHERE originator_id = %s ORDER BY originator_version",
            (UUID(stream),),
        )
        return [EventRow(stream, r[0], r[1], bytes(r[2])) for r in rows]

    def event(self, stream: str, version: int) -> EventRow | None:
        row = self._one(
            f"SELECT topic, state FROM {self._events}"
            " WHERE originator_id = %s AND originator_version = %s",
            (UUID(stream), version),
        )
        return None if row is None else EventRow(stream, version, row[0], bytes(row[1]))

    # -- checkpoints ----------------------------------------------------------

    def add_checkpoint(self, size: int, root: bytes, note: str, created: str) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO {self._checkpoints} (tree_size, root_hash, note, created)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (size, root, note, created),
            )

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self._all(
            f"SELECT tree_size, root_hash, note, created FROM {self._checkpoints}"
            " ORDER BY tree_size"
        )
        return [CheckpointRow(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = self._one(
            f"SELECT tree_size, root_hash, note, created FROM {self._checkpoints}"
            " ORDER BY tree_size DESC LIMIT 1"
        )
        return None if row is None else CheckpointRow(row[0], bytes(row[1]), row[2], row[3])

    # -- a ledger recorded before the audit log existed -----------------------

    def backfill(self) -> int:
        """Leaves for events stored before the audit log existed; only on an empty log.

        Holds the events table's write lock (as the recorder does), so no event is
        stored meanwhile.
        """
        if self._one(f"SELECT 1 FROM {self._leaves} LIMIT 1") or not self._one(
            f"SELECT 1 FROM {self._events} LIMIT 1"
        ):
            return 0
        count = 0
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {self._events} IN EXCLUSIVE MODE")
            if self._one(f"SELECT 1 FROM {self._leaves} LIMIT 1") or self._one(
                f"SELECT 1 FROM {self._checkpoints} LIMIT 1"
            ):
                return 0
            for rows in self.iter_events():
                events = [StoredEvent(UUID(r[0]), r[1], r[2], r[3]) for r in rows]
                append_leaves(cur, events, "%s", self.schema)
                count += len(events)
        self.fill_nodes(count)
        return count


@contextmanager
def postgres_snapshot(
    url: DatabaseUrl, events_table: str, snapshot: str
) -> Iterator[PostgresAuditStore]:
    """A new store whose reads see an exported snapshot (for a worker process)."""
    store = PostgresAuditStore(url, events_table)
    try:
        with store._lock, store._conn.transaction():
            store._conn.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot))
            )
            yield store
    finally:
        store.close()
