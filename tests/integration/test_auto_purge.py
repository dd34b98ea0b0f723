"""A soft-deleted certificate is purged by the worker when its retention period ends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.context import SYSTEM, Ctx
from ledger.domain.errors import NotFound
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory

CTX = Ctx("admin")


@pytest.fixture
def short_ledger(settings: Settings, clock: Clock) -> Iterator[Ledger]:
    """A ledger that keeps deleted certificates for 7 days."""
    opened = open_ledger(replace(settings, recoverable_days=7), clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def test_deleted_certificates_are_purged_when_retention_ends(
    short_ledger: Ledger, clock: Clock, make_policy: PolicyFactory
) -> None:
    ledger = short_ledger
    worker = Worker(ledger)
    try:
        for name in ("old", "recovered"):
            ledger.create_certificate(CTX, name, make_policy())
            worker.drive(name)
        key_id = ledger.certificate("old").versions[ledger.certificate("old").current or ""].key_id
        assert key_id is not None
        ledger.delete_certificate(CTX, "old")
        deleted = ledger.deleted_certificate("old")
        assert deleted.deleted_on is not None
        assert deleted.scheduled_purge == deleted.deleted_on + timedelta(days=7)

        ledger.delete_certificate(CTX, "recovered")
        ledger.recover_certificate(CTX, "recovered")

        clock.offset = timedelta(days=6, hours=23)
        worker.run_once()
        assert ledger.deleted_certificate("old").is_deleted  # not yet due

        clock.offset = timedelta(days=7, minutes=1)
        assert worker.run_once() >= 1
        with pytest.raises(NotFound):
            ledger.deleted_certificate("old")
        assert ledger.certificate("recovered").exists
        # Crypto-shredding, as a user's purge does: the key is gone from custody.
        with pytest.raises(Exception, match=key_id[:8]):
            ledger.custody.signer(key_id)

        events = [
            ledger.mapper.to_domain_event(n)
            for n in ledger.recorder.select_notifications(start=1, limit=10000)
        ]
        purged = [e for e in events if type(e).__name__ == "Purged"]
        assert len(purged) == 1 and purged[0].originator_id == deleted.id
        assert purged[0].actor == SYSTEM

        assert worker.run_once() == 0  # nothing more is due
        # The name is free again.
        ledger.create_certificate(CTX, "old", make_policy())
    finally:
        worker.close()


def test_lifetime_duties_run_at_most_once_per_period(
    short_ledger: Ledger, clock: Clock, make_policy: PolicyFactory
) -> None:
    """A busy worker's rounds follow each other closely; its lifetime duties need not."""
    ledger = short_ledger
    ledger.create_certificate(CTX, "soon", make_policy())
    busy = Worker(ledger, lifetime_every=3600)
    try:
        busy.drive("soon")
        ledger.delete_certificate(CTX, "soon")
        busy.run_once()  # the duties ran: nothing was due yet
        clock.offset = timedelta(days=8)
        busy.run_once()  # within the period: no duties, so no purge
        assert ledger.deleted_certificate("soon").is_deleted
        busy._lifetime_due = 0.0  # the period has passed
        assert busy.run_once() == 1
        with pytest.raises(NotFound):
            ledger.deleted_certificate("soon")
    finally:
        busy.close()
