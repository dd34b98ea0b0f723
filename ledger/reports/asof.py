"""The views as they stood at a point in the log, rebuilt in memory for --as-of reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledger.database import DatabaseUrl, Db
from ledger.moments import PointInTime
from projections.projector import VIEW_CLASSES
from projections.view import apply_all


def _apply(db: Db, events: Sequence[Any]) -> None:
    views = [cls() for cls in VIEW_CLASSES]
    with db.transaction() as cur:
        apply_all(cur, views, events)


def _memory_db() -> Db:
    db = Db(DatabaseUrl.memory())
    with db.transaction() as cur:
        for cls in VIEW_CLASSES:
            for statement in cls.schema:
                cur.execute(statement)
    return db


def views_as_of(
    ledger: Any, db: Db, at: PointInTime, names: Sequence[str] | None = None
) -> tuple[Db, int, datetime | None]:
    """In-memory views of every event up to `at` (of `names`' streams only, when given).

    Returns the database, the last log position it includes and the latest event time. An
    event is included when its position and its time are both within `at`, as
    `history --as-of` includes them.
    """
    memory = _memory_db()
    last = 0
    latest: datetime | None = None
    if names is not None:
        from ledger.history import History

        history = History(ledger, db)
        for name in dict.fromkeys(names):
            events = history.events(name, at)
            _apply(memory, [e for _, e in events])
            for position, event in events:
                last = max(last, position)
                latest = event.timestamp if latest is None else max(latest, event.timestamp)
        return memory, last, latest
    position = 0
    while True:
        batch = ledger.recorder.select_notifications(start=position + 1, limit=5000)
        if not batch:
            break
        chosen = []
        for notification in batch:
            if at.until_position is not None and notification.id > at.until_position:
                break
            event = ledger.mapper.to_domain_event(notification)
            if at.includes(notification.id, event.timestamp):
                chosen.append(event)
                last = notification.id
                latest = event.timestamp if latest is None else max(latest, event.timestamp)
        _apply(memory, chosen)
        position = batch[-1].id
        if at.until_position is not None and position >= at.until_position:
            break
    return memory, last, latest
