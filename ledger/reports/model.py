"""What every report states about itself: when, as of when, and from which checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Bumped when a field is renamed or removed, or its meaning changes; adding a field is not.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A tree head of the audit log: its origin, tree size and root hash, and its signed note."""

    origin: str
    tree_size: int
    root_hash: str
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "note": self.note,
        }


@dataclass(frozen=True)
class ReportContext:
    """The moment a report describes and the log it was computed from.

    `report_time` is the moment the facts are evaluated at: the --as-of time, else the time
    of generation. `log_position` is the last log position the report's views include.
    """

    generated_at: datetime
    report_time: datetime
    as_of: datetime | None
    at_position: int | None
    log_position: int
    checkpoint: Checkpoint

    @property
    def report_iso(self) -> str:
        return iso_text(self.report_time)

    def header(self, kind: str) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "report": kind,
            "generated_at": iso_text(self.generated_at),
            "report_time": iso_text(self.report_time),
            "as_of": iso_text(self.as_of) if self.as_of else None,
            "at_position": self.at_position,
            "log_position": self.log_position,
            "checkpoint": self.checkpoint.as_json(),
        }


def iso_text(moment: datetime) -> str:
    """The views' fixed-width UTC text, so that report times compare with theirs as text."""
    from projections.view import iso

    text = iso(moment)
    assert text is not None
    return text
