"""A certificate's history from the log: its timeline, and its state at any moment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.database import DatabaseUrl, Db, stream_positions
from ledger.domain.errors import NotFound
from ledger.domain.ids import certificate_id
from ledger.moments import NOW, PointInTime
from projections.projector import VIEW_CLASSES
from projections.queries import Queries
from projections.view import apply_all

# Bulky or secret-free-but-long fields shown by their fingerprint or left out.
HIDDEN = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "actor",
    "request_id",
    "_cid",
    "_at",
}
SHORTEN = {"cert_der", "csr_der", "public_key_pem", "chain_der", "policy"}


@dataclass(frozen=True)
class Entry:
    position: int
    time: datetime
    version: str
    event: str
    actor: str
    request_id: str
    facts: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "time": self.time.isoformat(),
            "version": self.version,
            "event": self.event,
            "actor": self.actor,
            "request_id": self.request_id,
            "facts": self.facts,
        }


def _facts(event: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for key, value in vars(event).items():
        if key in HIDDEN or key == "version":
            continue
        if key in SHORTEN:
            facts[key] = "…" if value else value
        elif isinstance(value, datetime):
            facts[key] = value.isoformat()
        else:
            facts[key] = value
    return facts


class History:
    """Reads one certificate's stream with each event's position in the log."""

    def __init__(self, ledger: Ledger, db: Db) -> None:
        self.ledger = ledger
        self.db = db

    def events(self, name: str, at: PointInTime = NOW) -> list[tuple[int, Any]]:
        cert_id = certificate_id(name)
        positions = stream_positions(self.db, str(cert_id))
        if not positions:
            raise NotFound(f"certificate {name!r} has no history")
        events: list[Any] = list(self.ledger.repository.event_store.get(cert_id))
        return [
            (positions[e.originator_version], e)
            for e in events
            if at.includes(positions[e.originator_version], e.timestamp)
        ]

    def timeline(
        self,
        name: str,
        *,
        version: str | None = None,
        since: datetime | None = None,
        at: PointInTime = NOW,
    ) -> list[Entry]:
        entries = []
        for position, event in self.events(name, at):
            event_version = str(getattr(event, "version", "") or "")
            if version and event_version != version:
                continue
            if since and event.timestamp < since:
                continue
            entries.append(
                Entry(
                    position=position,
                    time=event.timestamp,
                    version=event_version,
                    event=type(event).__name__,
                    actor=event.actor,
                    request_id=event.request_id,
                    facts=_facts(event),
                )
            )
        return entries

    def views_at(self, name: str, at: PointInTime) -> Queries:
        """The certificate's read models as they stood at `at`, rebuilt in memory."""
        return replay_into_memory([e for _, e in self.events(name, at)], self.ledger)


def replay_into_memory(events: Iterable[Any], ledger: Ledger) -> Queries:
    db = Db(DatabaseUrl.memory())
    views = [cls() for cls in VIEW_CLASSES]
    with db.transaction() as cur:
        for view in views:
            for statement in view.schema:
                cur.execute(statement)
        apply_all(cur, views, events)
    return Queries(db, ledger.settings.vault_url)
