"""The event recorder: events, the custody rows they reference and their Merkle leaves,
in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.audit.store import AUDIT_SCHEMA, append_leaves, write_stream_labels
from ledger.keys.store import CUSTODY_SCHEMA, CustodyRow, write_custody_rows


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Adds the custody and audit tables; writes `custody_rows` and one leaf per event.

    `stream_labels` name streams that start in this transaction (for audit reports).
    """

    #: Append a Merkle leaf for every stored event (off only to measure what it costs).
    audit_leaves = True

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *CUSTODY_SCHEMA, *AUDIT_SCHEMA]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        custody_rows: tuple[CustodyRow, ...] = (),
        stream_labels: tuple[tuple[str, str], ...] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        write_custody_rows(c, custody_rows)
        ids = super()._insert_events(c, stored_events, **kwargs)
        if self.audit_leaves:
            # After the events: this transaction now holds the write lock, so the
            # next leaf position read inside it cannot be taken by another writer.
            append_leaves(c, stored_events)
            write_stream_labels(c, stream_labels)
        return ids
