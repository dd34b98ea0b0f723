"""The event log as the views read it: plain SQL on the ledger's own tables.

`EventLog` answers the two questions a projector asks of the application recorder (the
head position, and the notifications after a position) on a connection of its own, so that
a process rebuilding views needs only the database URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    Notification,
    UUIDAsHex,
)

from ledger.database import Db, log_head


def default_mapper() -> Mapper[UUID]:
    """A mapper like the ledger's own (JSON, with the library's UUID/decimal/time types)."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


class EventLog:
    """Reads stored events in log order from the ledger's database."""

    def __init__(self, db: Db) -> None:
        self.db = db
        if db.url.is_sqlite:
            self._select = (
                "SELECT rowid, originator_id, originator_version, topic, state"
                " FROM stored_events WHERE rowid >= ? ORDER BY rowid LIMIT ?"
            )
        else:
            self._select = (
                "SELECT notification_id, originator_id, originator_version, topic, state"
                f' FROM "{db.url.schema}".ledger_events WHERE notification_id >= ?'
                " ORDER BY notification_id LIMIT ?"
            )

    def max_notification_id(self) -> int:
        return log_head(self.db)

    def select_notifications(self, start: int, limit: int) -> Sequence[Notification]:
        rows: list[tuple[Any, ...]] = self.db.execute(self._select, [start, limit])
        return [
            Notification(
                id=position,
                originator_id=stream if isinstance(stream, UUID) else UUID(stream),
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            for position, stream, version, topic, state in rows
        ]
