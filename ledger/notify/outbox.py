"""The outbox: one row per delivery to make, written in the transaction of the event
(`Notification.Raised`, `Delivered`, `DeliveryFailed`) that creates or settles it.

The recorder writes `outbox_rows` given to `save()` beside the events, as it does custody
rows; the deliverer reads the rows that are due. The feed's position in the event log is
kept here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.database import Db, log_head

OUTBOX = "notify_outbox"
FEED = "notify_feed"

OUTBOX_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {OUTBOX} ("
    " notification_id TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL, next_at DOUBLE PRECISION NOT NULL, last_error TEXT,"
    " PRIMARY KEY (notification_id, target))",
    f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due ON {OUTBOX} (status, next_at)",
    f"CREATE TABLE IF NOT EXISTS {FEED} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
)


@dataclass(frozen=True)
class OutboxRow:
    """A delivery to make: new with its notification."""

    notification_id: str
    target: str
    next_at: float

    def write(self, cursor: Any, p: str, q: str) -> None:
        cursor.execute(
            f"INSERT INTO {q}{OUTBOX} (notification_id, target, status, attempts, next_at,"
            f" last_error) VALUES ({p}, {p}, 'pending', 0, {p}, NULL)"
            f" ON CONFLICT (notification_id, target) DO NOTHING",
            (self.notification_id, self.target, self.next_at),
        )


@dataclass(frozen=True)
class OutboxUpdate:
    """A delivery settled (delivered, failed) or put off to `next_at`."""

    notification_id: str
    target: str
    status: str
    attempts: int
    next_at: float
    last_error: str | None

    def write(self, cursor: Any, p: str, q: str) -> None:
        cursor.execute(
            f"UPDATE {q}{OUTBOX} SET status = {p}, attempts = {p}, next_at = {p},"
            f" last_error = {p} WHERE notification_id = {p} AND target = {p}",
            (
                self.status,
                self.attempts,
                self.next_at,
                self.last_error,
                self.notification_id,
                self.target,
            ),
        )


OutboxWrite = OutboxRow | OutboxUpdate


def write_outbox_rows(
    cursor: Any, rows: Sequence[OutboxWrite], param: str = "?", schema: str = ""
) -> None:
    """Write with a DB-API cursor (`param` is the driver's placeholder) in its transaction."""
    q = f'"{schema}".' if schema else ""
    for row in rows:
        row.write(cursor, param, q)


@dataclass(frozen=True)
class DueDelivery:
    notification_id: str
    target: str
    attempts: int


class Outbox:
    """Reads of the outbox, and the feed's position, in the ledger's database."""

    def __init__(self, db: Db) -> None:
        self.db = db
        with db.transaction() as cur:
            cur.lock_schema()
            for statement in OUTBOX_SCHEMA:
                cur.execute(statement)

    def due(self, now: float, limit: int = 100) -> list[DueDelivery]:
        rows = self.db.execute(
            f"SELECT notification_id, target, attempts FROM {OUTBOX}"
            " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            [now, limit],
        )
        return [DueDelivery(str(n), str(t), int(a)) for n, t, a in rows]

    def status(self, notification_id: str, target: str) -> tuple[str, int] | None:
        rows = self.db.execute(
            f"SELECT status, attempts FROM {OUTBOX} WHERE notification_id = ? AND target = ?",
            [notification_id, target],
        )
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def feed_position(self, name: str = "notifications") -> int:
        """Where the feed stands; the first time, the log's head (history is not replayed)."""
        rows = self.db.execute(f"SELECT position FROM {FEED} WHERE name = ?", [name])
        if rows:
            return int(rows[0][0])
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {FEED} (name, position) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                [name, log_head(self.db)],
            )
            rows = cur.execute(f"SELECT position FROM {FEED} WHERE name = ?", [name])
        return int(rows[0][0])

    def advance_feed(self, position: int, name: str = "notifications") -> None:
        self.db.execute(
            f"UPDATE {FEED} SET position = ? WHERE name = ? AND position < ?",
            [position, name, position],
        )

    def close(self) -> None:
        self.db.close()
