"""Points in time in the log: a moment, or a position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.domain.errors import BadParameter


def parse_moment(text: str) -> datetime:
    """ISO 8601, `Z` allowed; a date alone is its midnight; naive times are UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PointInTime:
    """A moment in the log: a time, or a position (both inclusive); None means now."""

    until_time: datetime | None = None
    until_position: int | None = None

    def includes(self, position: int, moment: datetime) -> bool:
        if self.until_position is not None and position > self.until_position:
            return False
        return self.until_time is None or moment <= self.until_time

    @property
    def is_now(self) -> bool:
        return self.until_time is None and self.until_position is None


NOW = PointInTime()
