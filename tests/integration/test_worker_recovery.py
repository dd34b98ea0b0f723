"""The worker after crashes, CA errors, cancellations and a second worker on the same store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography import x509

from ledger.application import Ledger
from ledger.bootstrap import open_ledger, open_views
from ledger.domain.context import Ctx
from ledger.pause import Pause
from ledger.settings import Settings, WorkerSettings
from ledger.worker import WORKER, Worker
from tests.integration.conftest import Clock, build_policy
from tests.support.countingca import journal_lines
from tests.support.race import race

PROVIDERS = {"CERTLEDGER_PROVIDERS": "Counting=tests.support.countingca:CountingProvider"}
# Short leases: a "crashed" worker of this process holds its lease until it lapses.
FAST = WorkerSettings(max_attempts=5, backoff=0.01, max_backoff=0.05, lease_seconds=0.2)
CREATION = [
    "Registered",
    "PolicyReplaced",
    "OperationOpened",
    "KeyPairCreated",
    "CsrIssued",
    "IssuerOrderPlaced",
    "X509Merged",
    "VersionPromoted",
]


class Crash(BaseException):
    """Stands for the process dying right after a step was saved."""


def crash_at(step: str) -> Pause:
    def pause(saved: str) -> None:
        if saved == step:
            raise Crash(step)

    return pause


@pytest.fixture
def counting_settings(tmp_path: Path) -> Settings:
    return Settings.resolve(home=tmp_path / "home", environ=PROVIDERS)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "ca-journal.txt"


@pytest.fixture
def counting(counting_settings: Settings, clock: Clock) -> Iterator[Ledger]:
    opened = open_ledger(counting_settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def events_of(ledger: Ledger, cert_id: UUID) -> list[Any]:
    return [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(cert_id)]


def names_of(ledger: Ledger, name: str) -> list[str]:
    return [type(e).__name__ for e in events_of(ledger, ledger.certificate(name).id)]


def private_keys_of(settings: Settings, owner: str) -> int:
    db = settings.database.connect()
    try:
        rows = db.execute(
            "SELECT count(*) FROM custody_blobs WHERE owner = ? AND kind = 'private_key'", (owner,)
        )
    finally:
        db.close()
    return int(rows[0][0])


def operation_view(ledger: Ledger, name: str) -> dict[str, Any]:
    """The pending operation as the API and CLI read it, from the views."""
    projector, queries = open_views(ledger)
    try:
        projector.catch_up()
        return dict(queries.operation(name))
    finally:
        projector.db.close()


def add_issuer(ledger: Ledger, journal: Path, **params: object) -> None:
    ledger.set_issuer(
        Ctx("admin"),
        "counting",
        provider="Counting",
        provider_params={"journal": str(journal), **params},
    )


@pytest.mark.parametrize("step", ["key_pair", "csr", "order", "certificate", "promoted"])
def test_a_crash_after_any_step_is_finished_by_a_restarted_worker(
    counting_settings: Settings, clock: Clock, journal: Path, step: str
) -> None:
    ctx = Ctx("admin")
    first = open_ledger(counting_settings, clock=clock, pause=crash_at(step))
    add_issuer(first, journal)
    with pytest.raises(Crash):
        first.create_certificate(ctx, "svc", build_policy(issuer="counting"))
        Worker(first, FAST).drive("svc", timeout=10)
    first.close()
    time.sleep(FAST.lease_seconds)

    second = open_ledger(counting_settings, clock=clock)
    try:
        done = Worker(second, FAST).drive("svc", timeout=10)
        op = done.require_operation()
        assert op.status == "completed", op.status_details
        assert done.current == op.version
        assert names_of(second, "svc") == CREATION
        # One order at the CA, one version, one private key in custody.
        assert len(journal_lines(journal, "order")) == 1
        assert len(done.completed_versions()) == 1
        assert private_keys_of(counting_settings, "cert:svc:1") == 1
        # The step the crash interrupted was taken by the worker under the same request id.
        events = list(events_of(second, done.id))
        assert {e.request_id for e in events[2:]} == {ctx.request_id}
        if step == "key_pair":
            assert [e.actor for e in events if type(e).__name__ == "CsrIssued"] == [WORKER]
        assert second.secret_value(ctx, "svc")[1].version == op.version
    finally:
        second.close()


def test_a_ca_that_fails_twice_then_issues(counting: Ledger, journal: Path, clock: Clock) -> None:
    ctx = Ctx("admin")
    add_issuer(counting, journal, fail_times=2)
    counting.create_certificate(ctx, "flaky", build_policy(issuer="counting"))

    done = Worker(counting, FAST).drive("flaky", timeout=10)

    op = done.require_operation()
    assert op.status == "completed"
    assert len(journal_lines(journal, "attempt")) == 3
    assert len(journal_lines(journal, "order")) == 1
    retries = [e for e in events_of(counting, done.id) if type(e).__name__ == "RetryScheduled"]
    assert [e.attempt for e in retries] == [1, 2]
    assert all(e.code == "ProviderError" and "unreachable" in e.message for e in retries)
    assert retries[1].retry_at > retries[0].retry_at
    assert names_of(counting, "flaky")[-3:] == [
        "IssuerOrderPlaced",
        "X509Merged",
        "VersionPromoted",
    ]


def test_a_ca_that_always_fails_fails_the_operation_and_keeps_the_current_version(
    counting: Ledger, journal: Path
) -> None:
    ctx = Ctx("admin")
    worker = Worker(counting, WorkerSettings(max_attempts=3, backoff=0.01, max_backoff=0.02))
    counting.create_certificate(ctx, "steady", build_policy())
    current = worker.drive("steady").version_of(None)
    add_issuer(counting, journal, always_fail=True)
    counting.create_certificate(ctx, "steady", build_policy(issuer="counting"))

    after = worker.drive("steady", timeout=10)

    op = after.require_operation()
    assert op.status == "failed"
    assert op.error_code == "ProviderError"
    assert op.error_message is not None
    assert op.error_message.startswith("counting: CA endpoint unreachable (attempt 3)")
    assert op.error_message.endswith("(gave up after 3 attempts)")
    body = operation_view(counting, "steady")
    assert body["status"] == "failed"
    assert body["error"] == {"code": "ProviderError", "message": op.error_message}
    assert after.current == current.version
    assert after.version_of(None) == current
    assert counting.secret_value(ctx, "steady")[1].version == current.version
    assert len(journal_lines(journal, "attempt")) == 3
    assert journal_lines(journal, "order") == []
    assert names_of(counting, "steady")[-3:] == [
        "RetryScheduled",
        "RetryScheduled",
        "OperationFailed",
    ]


def test_run_once_leaves_a_retry_until_it_is_due(
    counting: Ledger, journal: Path, clock: Clock
) -> None:
    add_issuer(counting, journal, fail_times=1)
    counting.create_certificate(Ctx("admin"), "later", build_policy(issuer="counting"))
    worker = Worker(counting, WorkerSettings(backoff=30))

    assert worker.run_once() == 1  # the failed attempt, saved as RetryScheduled
    assert worker.run_once() == 0  # not due for 30 s
    assert len(journal_lines(journal, "attempt")) == 1
    op = counting.certificate("later").require_operation()
    assert op.retry_at is not None and op.attempts == 1
    assert "retrying" in operation_view(counting, "later")["status_details"]

    clock.offset += timedelta(seconds=31)
    assert worker.run_once() == 1  # order, certificate and promotion, in one commit
    assert counting.certificate("later").require_operation().status == "completed"


def test_cancellation_while_the_order_is_pending_cancels_it_at_the_ca(
    counting: Ledger, journal: Path
) -> None:
    ctx = Ctx("admin")
    add_issuer(counting, journal, pending_polls=1000)
    created = counting.create_certificate(ctx, "slow", build_policy(issuer="counting"))
    worker = Worker(counting, FAST, poll_interval=0.01)

    assert worker.run_once() == 1  # the order is placed, and pending
    ref = counting.certificate("slow").pending_version().order_ref
    assert ref is not None
    time.sleep(0.02)
    assert worker.run_once() == 0  # still pending
    counting.cancel_operation(ctx, "slow")
    assert worker.run_once() == 1

    cert = counting.certificate("slow")
    op = cert.require_operation()
    assert op.status == "cancelled"
    assert f"Order {ref} was cancelled at counting" in op.status_details
    assert journal_lines(journal, "cancel") == [ref]
    assert cert.current is None
    assert cert.versions[created.pending_version().version].cert_der is None
    assert names_of(counting, "slow")[-3:] == [
        "IssuerOrderPlaced",
        "CancellationRequested",
        "OperationCancelled",
    ]


def test_two_workers_on_one_store_complete_each_operation_once(
    counting_settings: Settings, clock: Clock, journal: Path
) -> None:
    ledgers = [open_ledger(counting_settings, clock=clock) for _ in range(2)]
    try:
        ctx = Ctx("admin")
        add_issuer(ledgers[0], journal)
        names = [f"race-{i}" for i in range(6)]
        for name in names:
            ledgers[0].create_certificate(ctx, name, build_policy(issuer="counting"))
        workers = [Worker(led, WorkerSettings(lease_seconds=30)) for led in ledgers]
        race(workers, rounds=20)

        for name in names:
            cert = ledgers[0].certificate(name)
            assert cert.require_operation().status == "completed"
            assert names_of(ledgers[0], name).count("VersionPromoted") == 1
            assert names_of(ledgers[0], name).count("IssuerOrderPlaced") == 1
        orders = journal_lines(journal, "order")
        assert len(orders) == len(names) == len(set(orders))
    finally:
        for led in ledgers:
            led.close()


def test_two_workers_racing_on_local_ca_orders_save_each_version_once(
    settings: Settings, clock: Clock
) -> None:
    """LocalCA is called without a lease: racing workers sign, and exactly one saves."""
    ledgers = [open_ledger(settings, clock=clock) for _ in range(2)]
    try:
        ctx = Ctx("admin")
        ledgers[0].set_issuer(ctx, "local", provider="LocalCA")
        names = [f"local-{i}" for i in range(6)]
        for name in names:
            ledgers[0].create_certificate(ctx, name, build_policy(issuer="local"))
        workers = [Worker(led) for led in ledgers]
        race(workers, rounds=10)
        for name in names:
            cert = ledgers[0].certificate(name)
            assert cert.require_operation().status == "completed"
            events = names_of(ledgers[0], name)
            assert events.count("IssuerOrderPlaced") == events.count("VersionPromoted") == 1
            # The order book answered both racers with one certificate.
            version = cert.versions[cert.current or ""]
            assert version.order_ref is not None
            found = ledgers[0].providers.services.orders.find("local", version.order_ref)
            assert found is not None
            issued = x509.load_pem_x509_certificate(found[1]["certificates_pem"].encode())
            assert format(issued.serial_number, "x") == version.serial
        for worker in workers:
            worker.close()
    finally:
        for led in ledgers:
            led.close()


def test_worker_shards_split_the_certificates(ledger: Ledger) -> None:
    ctx = Ctx("admin")
    for i in range(8):
        ledger.create_certificate(ctx, f"shard-{i}", build_policy())
    shards = [Worker(ledger, shard=(i, 2), lifetime=i == 0) for i in range(2)]
    try:
        found = [worker.discover() for worker in shards]
        assert not found[0] & found[1]
        everything = found[0] | found[1]
        assert len(everything) == 8 and all(c.int % 2 == 0 for c in found[0])
        assert shards[1].lifetime is None
        assert shards[1].run_once() == len(found[1])  # its own share, one commit each
        assert shards[1].run_once() == 0
        open_ones = [n for n in range(8) if ledger.certificate(f"shard-{n}").operation]
        done = {
            ledger.certificate(f"shard-{n}").id
            for n in open_ones
            if ledger.certificate(f"shard-{n}").require_operation().status == "completed"
        }
        assert done == found[1]
        shards[0].run_once()
        assert all(
            ledger.certificate(f"shard-{n}").require_operation().status == "completed"
            for n in range(8)
        )
    finally:
        for worker in shards:
            worker.close()
