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


HEX = "0123456789abcdef"


class EventLog:
    """Reads stored events in log order from the ledger's database.

    `until` stops the log at a position; `share=(k, n)` keeps only the events of the
    streams in share k of n (by their id's first hex digit: every event of a stream falls
    in one share), so that n processes can split a rebuild by stream.
    """

    def __init__(
        self, db: Db, *, until: int | None = None, share: tuple[int, int] | None = None
    ) -> None:
        self.db = db
        self.until = until
        n = share[1] if share else 1
        if db.url.is_sqlite:
            position, stream, table = "rowid", "originator_id", "stored_events"
            digit = f"instr('{HEX}', lower(substr({stream}, 1, 1))) - 1"
            share_of = f"({digit}) % {int(n)}"
        else:
            position, stream = "notification_id", "originator_id"
            table = f'"{db.url.schema}".ledger_events'
            digit = f"strpos('{HEX}', substr({stream}::text, 1, 1)) - 1"
            share_of = f"mod({digit}, {int(n)})"
        where = f"{position} >= ?"
        if until is not None:
            where += f" AND {position} <= {int(until)}"
        if share is not None:
            where += f" AND {share_of} = {int(share[0])}"
        self._select = (
            f"SELECT {position}, {stream}, originator_version, topic, state FROM {table}"
            f" WHERE {where} ORDER BY {position} LIMIT ?"
        )

    def max_notification_id(self) -> int:
        head = log_head(self.db)
        return head if self.until is None else min(head, self.until)

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
