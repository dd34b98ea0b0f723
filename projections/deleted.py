"""Deleted certificates, recoverable until purged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.database import Db
from projections.rows import Rows
from projections.view import View, at, cid, iso, on

T = "v_deleted"


class DeletedView(View):
    name = "deleted"
    keys = {T: ("cert_id",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT,"
        " is_deleted INTEGER NOT NULL, deleted_on TEXT, scheduled_purge TEXT)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_deleted ON {T} (is_deleted, name)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_purge ON {T} (is_deleted, scheduled_purge)",
    )

    @on("Certificate.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        rows.put(T, {"cert_id": cid(e), "name": e.name, "is_deleted": 0}, new=True)

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        rows.patch(T, (cid(e),), version=e.version)

    @on("Certificate.Deleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        rows.patch(
            T,
            (cid(e),),
            is_deleted=1,
            deleted_on=at(e),
            scheduled_purge=iso(e.timestamp + timedelta(days=e.recoverable_days)),
        )

    @on("Certificate.Recovered")
    def recovered(self, rows: Rows, e: Any) -> None:
        rows.patch(T, (cid(e),), is_deleted=0, deleted_on=None, scheduled_purge=None)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        rows.patch(T, (cid(e),), is_deleted=0, version=None, deleted_on=None, scheduled_purge=None)


def due_purges(db: Db, now: datetime, limit: int = 100) -> list[str]:
    """Ids of deleted certificates whose retention period has ended at `now`."""
    rows = db.execute(
        f"SELECT cert_id FROM {T} WHERE is_deleted = 1 AND scheduled_purge <= ? LIMIT ?",
        [iso(now), limit],
    )
    return [str(r[0]) for r in rows]
