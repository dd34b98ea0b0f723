"""Notifications and their deliveries: one row per notification and target."""

from __future__ import annotations

from typing import Any

from ledger.database import Db
from projections.rows import Rows
from projections.view import View, at, cid, iso, on

T = "v_notifications"
COLUMNS = (
    "notification_id",
    "target",
    "cert_id",
    "name",
    "version",
    "kind",
    "event_type",
    "trigger_key",
    "raised_at",
    "status",
    "attempts",
    "last_error",
    "next_attempt",
    "delivered_at",
)


class NotificationsView(View):
    name = "notifications"
    keys = {T: ("notification_id", "target")}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " notification_id TEXT NOT NULL, target TEXT NOT NULL, cert_id TEXT NOT NULL,"
        " name TEXT NOT NULL, version TEXT NOT NULL, kind TEXT NOT NULL,"
        " event_type TEXT NOT NULL, trigger_key TEXT NOT NULL, raised_at TEXT NOT NULL,"
        " status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,"
        " next_attempt TEXT, delivered_at TEXT, PRIMARY KEY (notification_id, target))",
        f"CREATE INDEX IF NOT EXISTS {T}_by_status ON {T} (status, raised_at)",
    )

    def _set(self, rows: Rows, e: Any, **values: Any) -> None:
        rows.patch(T, (cid(e), e.target), **values)

    @on("Notification.Raised")
    def raised(self, rows: Rows, e: Any) -> None:
        for target in e.targets:
            rows.put(
                T,
                {
                    "notification_id": cid(e),
                    "target": target,
                    "cert_id": e.cert_id,
                    "name": e.name,
                    "version": e.version,
                    "kind": e.kind,
                    "event_type": e.event_type,
                    "trigger_key": e.trigger,
                    "raised_at": iso(e.time),
                    "status": "pending",
                    "attempts": 0,
                    "last_error": None,
                    "next_attempt": iso(e.time),
                    "delivered_at": None,
                },
            )

    @on("Notification.Delivered")
    def delivered(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            status="delivered",
            attempts=e.attempt,
            next_attempt=None,
            delivered_at=at(e),
        )

    @on("Notification.DeliveryFailed")
    def failed(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            status="pending" if e.retry_at is not None else "failed",
            attempts=e.attempt,
            last_error=e.error,
            next_attempt=iso(e.retry_at),
        )


def notification_rows(
    db: Db, *, status: str | None = None, name: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Deliveries, newest first; filtered by status and certificate name."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {T}"
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if name is not None:
        where.append("LOWER(name) = ?")
        params.append(name.lower())
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY raised_at DESC, notification_id, target LIMIT ?"
    return [dict(zip(COLUMNS, r, strict=True)) for r in db.execute(sql, [*params, limit])]
