"""A certificate history with everything a lineage report has to show, built through the
ledger's own commands: five versions, a reused key, a failed and a cancelled operation, an
order from a LocalCA whose CA certificate cuts the validity short, a gap and an overlap.

The clock is moved back so that validity windows lie in the past; the events themselves are
recorded at the real time, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.worker import Worker

# The CA certificate (10 years) is made this long ago, so it expires ~62 days from now.
CA_AGE = timedelta(days=3650 - 60)


@dataclass(frozen=True)
class Story:
    v1: str
    v2: str
    failed: str
    cancelled: str
    v5: str
    after_v2: datetime  # a real moment between v2's promotion and the next command
    finished: datetime


def _moment() -> datetime:
    time.sleep(0.02)
    moment = datetime.now(UTC)
    time.sleep(0.02)
    return moment


def build_story(
    ledger: Ledger,
    clock: Any,
    ctx: Ctx,
    policy: Any,
    name: str = "web",
    after_v2: Callable[[datetime], None] | None = None,
) -> Story:
    """`clock` is the ledger's movable clock; `policy(**kwargs)` builds a policy;
    `after_v2(moment)` runs once v2 is current, before anything else happens."""
    worker = Worker(ledger)
    try:
        clock.offset = -CA_AGE
        ledger.set_issuer(ctx, "corp", provider="LocalCA")

        clock.offset = -timedelta(days=730)
        ledger.create_certificate(ctx, name, policy(issuer="Self"))
        v1 = worker.drive(name).version_of(None).version

        clock.offset = -timedelta(days=180)
        ledger.create_certificate(ctx, name, policy(issuer="Self", reuse_key=True))
        v2 = worker.drive(name).version_of(None).version
        v2_moment = _moment()
        if after_v2 is not None:
            after_v2(v2_moment)
            time.sleep(0.02)

        clock.offset = timedelta(0)
        ledger.set_issuer(ctx, "temp", provider="LocalCA")
        cert = ledger.create_certificate(ctx, name, policy(issuer="temp"))
        failed = cert.pending_version().version
        ledger.delete_issuer(ctx, "temp")
        op = worker.drive(name).require_operation()
        assert (op.status, op.error_code) == ("failed", "IssuerNotFound")

        cert = ledger.create_certificate(ctx, name, policy(issuer="Unknown"))
        cancelled = cert.pending_version().version
        ledger.cancel_operation(ctx, name)
        assert worker.drive(name).require_operation().status == "cancelled"

        clock.offset = -timedelta(days=30)
        ledger.create_certificate(ctx, name, policy(issuer="corp"))
        v5 = worker.drive(name).version_of(None).version
        clock.offset = timedelta(0)
        return Story(v1, v2, failed, cancelled, v5, v2_moment, _moment())
    finally:
        worker.close()
