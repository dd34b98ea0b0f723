"""The event log as the views read it: plain SQL on the ledger's own tables.

`EventLog` answers the two questions a projector asks of the application recorder (the
head position, and the notifications after a position) on a connection of its own, so that
a process rebuilding views needs only the database URL. `StreamShare` reads a rebuild's share
of the log stream by stream.
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

from ledger.database import Db, log_head, log_table


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
        table, position = log_table(db)
        self._select = (
            f"SELECT {position}, originator_id, originator_version, topic, state FROM {table}"
            f" WHERE {position} >= ? ORDER BY {position} LIMIT ?"
        )

    def max_notification_id(self) -> int:
        return log_head(self.db)

    def select_notifications(self, start: int, limit: int) -> Sequence[Notification]:
        rows: list[tuple[Any, ...]] = self.db.execute(self._select, [start, limit])
        return _notifications(rows)


HEX = "0123456789abcdef"


class StreamShare:
    """One share of the log up to position `until`, read stream by stream, for a rebuild.

    A rebuild needs each stream's events in order, not the log's order across streams. Read
    through the (stream, version) key, each stream's events come together: its rows are made
    in one go and written in key order. Share k of n holds the streams whose id's first hex
    digit is in the k-th of n ranges of 0-f, so that n processes can split a rebuild by stream.
    Events are numbered 1, 2, ... in the order read (the numbers the rebuild tracks); the
    share is read once, from the start.
    """

    def __init__(self, db: Db, *, until: int, share: tuple[int, int] = (0, 1)) -> None:
        k, n = share
        if not 0 <= k < n <= len(HEX):
            raise ValueError(f"share {k} of {n}: need 0 <= k < n <= {len(HEX)}")
        self.db = db
        self.read = 0
        self._total: int | None = None
        low, high = HEX[len(HEX) * k // n], HEX[len(HEX) * (k + 1) // n :][:1]
        table, position = log_table(db)
        if db.url.is_sqlite:  # ids are stored as 32 hex digits
            first: Any = low
            self._bounds: list[Any] = [high] if high else []
        else:
            first = UUID(low + "0" * 31)
            self._bounds = [UUID(high + "0" * 31)] if high else []
        self._first = first
        self._after: tuple[Any, int] = (first, 0)
        where = f"{position} <= {int(until)}" + (" AND originator_id < ?" if high else "")
        self._select = (
            f"SELECT originator_id, originator_version, topic, state FROM {table}"
            f" WHERE (originator_id, originator_version) > (?, ?) AND {where}"
            " ORDER BY originator_id, originator_version LIMIT ?"
        )
        self._count = f"SELECT COUNT(*) FROM {table} WHERE originator_id >= ? AND {where}"

    def max_notification_id(self) -> int:
        """How many events the share holds."""
        if self._total is None:
            found = self.db.execute(self._count, [self._first, *self._bounds])
            self._total = int(found[0][0])
        return self._total

    def select_notifications(self, start: int, limit: int) -> Sequence[Notification]:
        if start != self.read + 1:
            raise ValueError(f"a share is read once, in order: asked for {start} after {self.read}")
        params = [*self._after, *self._bounds, limit]
        rows: list[tuple[Any, ...]] = self.db.execute(self._select, params)
        if rows:
            self._after = (rows[-1][0], rows[-1][1])
        found = _notifications(rows, start)
        self.read += len(found)
        return found


def _notifications(rows: list[tuple[Any, ...]], first: int | None = None) -> list[Notification]:
    """Rows of (position, stream, version, topic, state) as notifications; with `first`,
    rows without the position, numbered from `first`. A stream's id is parsed once."""
    ids: dict[Any, UUID] = {}
    found: list[Notification] = []
    for row in rows:
        if first is None:
            position, stream, version, topic, state = row
        else:
            (stream, version, topic, state), position = row, first + len(found)
        uuid = ids.get(stream)
        if uuid is None:
            uuid = ids[stream] = stream if isinstance(stream, UUID) else UUID(stream)
        found.append(
            Notification(
                id=position,
                originator_id=uuid,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
        )
    return found
