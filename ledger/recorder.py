"""Event recorders: events, the custody and outbox rows they bring and their Merkle
leaves, in one transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    ListenNotifySubscription,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from ledger.audit.store import AUDIT_SCHEMA, append_leaves, audit_schema, write_stream_labels
from ledger.database import write_gate
from ledger.keys.store import CustodyRow, custody_schema, write_custody_rows
from ledger.notify.outbox import OutboxWrite, write_outbox_rows

STATEMENT_CACHE = 64


class StatementCachingPool(SQLiteConnectionPool):
    """eventsourcing 9.5's SQLite connections, with a statement cache worth the name.

    It opens them with `cached_statements=True`, a cache of one statement, so every
    save parses its SQL again (BEGIN, the event insert, custody and audit rows).
    """

    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Adds the custody and audit tables; writes `custody_rows` and one leaf per event.

    `stream_labels` name streams that start in this transaction (for audit reports).
    """

    #: Append a Merkle leaf for every stored event (off only to measure what it costs).
    audit_leaves = True

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        if type(datastore.pool) is SQLiteConnectionPool:
            # Before any connection is made (the factory makes the recorder, then tables).
            datastore.pool.__class__ = StatementCachingPool
        super().__init__(datastore, events_table_name)
        pool = datastore.pool
        self._gate: AbstractContextManager[Any] = (
            nullcontext() if pool.is_sqlite_memory_mode else write_gate(pool.db_name)
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self._gate:  # queue behind this process's other writers (`write_gate`)
            return super().insert_events(stored_events, **kwargs)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *custody_schema("BLOB"),
            *AUDIT_SCHEMA,
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        stream_labels: tuple[tuple[str, str], ...] = (),
        outbox_rows: tuple[OutboxWrite, ...] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        write_custody_rows(c, custody_rows)
        write_outbox_rows(c, outbox_rows)
        ids = super()._insert_events(c, stored_events, **kwargs)
        if self.audit_leaves:
            # After the events: this transaction now holds the write lock, so the
            # next leaf position read inside it cannot be taken by another writer.
            append_leaves(c, stored_events)
            write_stream_labels(c, stream_labels)
        return ids

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """SQLite cannot notify: the subscription polls for new events."""
        return SQLitePollingSubscription(self, gt=gt, topics=topics)


class SQLitePollingSubscription(ListenNotifySubscription[LedgerSQLiteRecorder]):
    """eventsourcing's listen/notify subscription, woken by a timer instead of NOTIFY."""

    interval = 0.05

    def __init__(
        self, recorder: LedgerSQLiteRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._stopped = threading.Event()
        self._poll_thread = threading.Thread(target=self._poll, daemon=True)
        self._poll_thread.start()

    def _poll(self) -> None:
        while not self._stopped.wait(self.interval):
            self._has_been_notified.set()

    def stop(self) -> None:
        self._stopped.set()
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._poll_thread.join()


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """The PostgreSQL recorder: `custody_rows` and one Merkle leaf per event, in the
    events' transaction (the audit tables are created with the events table)."""

    #: Append a Merkle leaf for every stored event (off only to measure what it costs).
    audit_leaves = True

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        for statement in audit_schema("BYTEA", "BIGINT", datastore.schema):
            self.sql_create_statements.append(SQL(statement).format())

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        stream_labels: tuple[tuple[str, str], ...] = (),
        outbox_rows: tuple[OutboxWrite, ...] = (),
        **kwargs: Any,
    ) -> None:
        write_custody_rows(curs, custody_rows, "%s", self.datastore.schema)
        write_outbox_rows(curs, outbox_rows, "%s", self.datastore.schema)
        super()._insert_events(curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        stream_labels: tuple[tuple[str, str], ...] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if self.audit_leaves:
            # After the events: this transaction holds the events table's EXCLUSIVE lock,
            # so the next leaf position read inside it cannot be taken by another writer.
            append_leaves(curs, stored_events, "%s", self.datastore.schema)
            write_stream_labels(curs, stream_labels, "%s", self.datastore.schema)
        return ids
