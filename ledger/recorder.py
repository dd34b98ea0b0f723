"""Event recorders: events and the custody and outbox rows they bring, in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    ListenNotifySubscription,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.keys.store import CustodyRow, custody_schema, write_custody_rows
from ledger.notify.outbox import OutboxWrite, write_outbox_rows


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Adds the custody tables, and writes `custody_rows` with the events."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *custody_schema("BLOB")]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        outbox_rows: tuple[OutboxWrite, ...] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        write_custody_rows(c, custody_rows)
        write_outbox_rows(c, outbox_rows)
        return super()._insert_events(c, stored_events, **kwargs)

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
    """The PostgreSQL recorder, writing `custody_rows` in the events' transaction."""

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        outbox_rows: tuple[OutboxWrite, ...] = (),
        **kwargs: Any,
    ) -> None:
        write_custody_rows(curs, custody_rows, "%s", self.datastore.schema)
        write_outbox_rows(curs, outbox_rows, "%s", self.datastore.schema)
        super()._insert_events(curs, stored_events, **kwargs)
