"""The event recorder: events and the custody rows they reference, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.keys.store import CUSTODY_SCHEMA, CustodyRow, write_custody_rows


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Adds the custody tables, and writes `custody_rows` with the events."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *CUSTODY_SCHEMA]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        write_custody_rows(c, custody_rows)
        return super()._insert_events(c, stored_events, **kwargs)
