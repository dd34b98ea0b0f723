"""The ledger's clock: real time, or real time shifted to start at a given moment."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def clock_from(start: datetime | None) -> Clock:
    """Real time; with `start`, a clock that reads `start` now and runs on from there
    (CERTLEDGER_NOW: tests and previews of what the worker would do)."""
    if start is None:
        return utcnow
    origin = time.monotonic()

    def now() -> datetime:
        return start + timedelta(seconds=time.monotonic() - origin)

    return now
