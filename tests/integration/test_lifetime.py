"""Lifetime actions with the clock moved forward: renewals and notices fire once per version."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ledger.application import Ledger, load_version_cert
from ledger.bootstrap import open_ledger, open_views
from ledger.domain.context import Ctx
from ledger.domain.policy import CertificatePolicy
from ledger.lifetime.settings import LifetimeSettings
from ledger.settings import Settings, WorkerSettings
from ledger.worker import Worker
from projections.lifetime import lifetime_facts
from tests.integration.conftest import Clock, build_policy
from tests.support.countingca import journal_lines
from tests.support.race import race

PROVIDERS = {"Counting": "tests.support.countingca:CountingProvider"}
FAST = WorkerSettings(max_attempts=2, backoff=0.01, max_backoff=0.02, lease_seconds=5)
Open = Callable[..., Ledger]


@pytest.fixture
def open_at(settings: Settings, clock: Clock) -> Iterator[Open]:
    """Open ledgers on the test's database with the given lifetime settings."""
    opened: list[Ledger] = []

    def open_(**lifetime: Any) -> Ledger:
        configured = replace(
            settings, extra_providers=PROVIDERS, lifetime=LifetimeSettings(**lifetime)
        )
        led = open_ledger(configured, clock=clock)
        opened.append(led)
        return led

    yield open_
    for led in opened:
        led.close()


def events(ledger: Ledger, name: str) -> list[Any]:
    cert = ledger.certificate(name)
    return [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(cert.id)]


def of_type(ledger: Ledger, name: str, kind: str) -> list[Any]:
    return [e for e in events(ledger, name) if type(e).__name__ == kind]


def lifetime_of(policy: CertificatePolicy, *actions: dict[str, Any]) -> CertificatePolicy:
    data = policy.to_kv_json()
    data["lifetime_actions"] = list(actions)
    return CertificatePolicy.from_kv_json(data)


def move_to(clock: Clock, ledger: Ledger, name: str, fraction: float) -> None:
    """Set the clock to `fraction` of the current version's lifetime."""
    v = ledger.certificate(name).version_of(None)
    assert v.not_before is not None and v.not_after is not None
    clock.offset = timedelta(0)
    target = v.not_before + (v.not_after - v.not_before) * fraction
    clock.offset = target - clock()


def run(worker: Worker, times: int = 3) -> None:
    for _ in range(times):
        worker.run_once()


def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Worker rounds until `done()` (or the timeout: the caller's assertions then fail)."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.005)


def test_auto_renew_at_80_percent_creates_exactly_one_new_version_on_self(
    open_at: Open, clock: Clock
) -> None:
    ledger = open_at(near_expiry_days=0)
    worker = Worker(ledger, FAST)
    ctx = Ctx("admin")
    ledger.create_certificate(ctx, "web", build_policy())  # default: AutoRenew at 80%
    first = worker.drive("web").version_of(None)

    move_to(clock, ledger, "web", 0.79)
    run(worker)
    assert ledger.certificate("web").current == first.version
    assert of_type(ledger, "web", "LifetimeActionTriggered") == []

    move_to(clock, ledger, "web", 0.81)
    run(worker, 5)

    cert = ledger.certificate("web")
    assert len(cert.completed_versions()) == 2
    second = cert.version_of(None)
    assert second.version != first.version
    assert second.key_id != first.key_id  # a new key: reuse_key is false
    assert second.not_before is not None and first.not_before is not None
    assert first.not_after is not None
    assert second.not_before > first.not_before
    fired = of_type(ledger, "web", "LifetimeActionTriggered")
    assert [(e.version, e.action, e.trigger, e.outcome) for e in fired] == [
        (first.version, "AutoRenew", "lifetime_percentage=80", "renew")
    ]
    assert fired[0].due == first.not_before + (first.not_after - first.not_before) * 0.8
    attempts = of_type(ledger, "web", "RenewalAttempted")
    assert [(e.version, e.attempt, e.new_version) for e in attempts] == [
        (first.version, 1, second.version)
    ]
    assert of_type(ledger, "web", "VersionPromoted")[-1].previous_version == first.version

    # A restarted worker (new ledger object, new worker) does not fire it again.
    again = open_at(near_expiry_days=0)
    run(Worker(again, FAST), 3)
    assert len(again.certificate("web").completed_versions()) == 2
    assert len(of_type(again, "web", "LifetimeActionTriggered")) == 1


def test_auto_renew_reuses_the_key_when_the_policy_says_so(open_at: Open, clock: Clock) -> None:
    ledger = open_at(near_expiry_days=0)
    worker = Worker(ledger, FAST)
    ledger.create_certificate(Ctx("admin"), "same", build_policy(reuse_key=True))
    first = worker.drive("same").version_of(None)
    move_to(clock, ledger, "same", 0.85)
    run(worker)
    second = ledger.certificate("same").version_of(None)
    assert second.version != first.version
    assert second.key_id == first.key_id
    assert second.key_reused


def test_auto_renew_through_the_local_ca_provider(open_at: Open, clock: Clock) -> None:
    ledger = open_at(near_expiry_days=0)
    worker = Worker(ledger, FAST)
    ctx = Ctx("admin")
    issuer = ledger.set_issuer(ctx, "corp", provider="LocalCA")
    ca = x509.load_pem_x509_certificate(issuer.provider_state["ca_cert_pem"].encode())
    ledger.create_certificate(ctx, "svc", build_policy(issuer="corp"))
    first = worker.drive("svc").version_of(None)

    move_to(clock, ledger, "svc", 0.8 + 1e-4)
    run(worker, 4)

    cert = ledger.certificate("svc")
    assert len(cert.completed_versions()) == 2
    second = cert.version_of(None)
    assert second.version != first.version and second.origin == "provider"
    leaf = load_version_cert(second)
    assert leaf.issuer == ca.subject
    ca.public_key().verify(  # type: ignore[union-attr]
        leaf.signature, leaf.tbs_certificate_bytes, *_ec_args(leaf)
    )
    names = [type(e).__name__ for e in events(ledger, "svc")]
    assert names[-8:] == [
        "LifetimeActionTriggered",
        "RenewalAttempted",
        "OperationOpened",
        "KeyPairCreated",
        "CsrIssued",
        "IssuerOrderPlaced",
        "X509Merged",
        "VersionPromoted",
    ]


def _ec_args(leaf: x509.Certificate) -> tuple[Any, ...]:
    from cryptography.hazmat.primitives.asymmetric import ec

    assert leaf.signature_hash_algorithm is not None
    return (ec.ECDSA(leaf.signature_hash_algorithm),)


def test_days_before_expiry_triggers(open_at: Open, clock: Clock) -> None:
    ledger = open_at(near_expiry_days=0)
    worker = Worker(ledger, FAST)
    policy = lifetime_of(
        build_policy(),
        {"trigger": {"days_before_expiry": 40}, "action": {"action_type": "AutoRenew"}},
    )
    ledger.create_certificate(Ctx("admin"), "days", policy)
    first = worker.drive("days").version_of(None)
    assert first.not_after is not None

    clock.offset = timedelta(0)
    clock.offset = first.not_after - timedelta(days=41) - clock()
    run(worker)
    assert ledger.certificate("days").current == first.version

    clock.offset += timedelta(days=2)
    run(worker)
    cert = ledger.certificate("days")
    assert cert.current != first.version
    fired = of_type(ledger, "days", "LifetimeActionTriggered")
    assert [(e.action, e.trigger) for e in fired] == [("AutoRenew", "days_before_expiry=40")]
    assert fired[0].due == first.not_after - timedelta(days=40)


def test_an_unknown_issuer_only_notifies(open_at: Open, clock: Clock, openssl: Any) -> None:
    ledger = open_at(near_expiry_days=30)
    worker = Worker(ledger, FAST)
    ctx = Ctx("admin")
    ledger.create_certificate(ctx, "manual", build_policy(issuer="Unknown"))
    merge_signed_by_a_ca(ledger, "manual", openssl)
    first = ledger.certificate("manual").version_of(None)
    [action] = ledger.policy_of(ledger.certificate("manual")).lifetime_actions
    assert action.action.action_type == "EmailContacts"

    move_to(clock, ledger, "manual", 0.85)
    run(worker)

    cert = ledger.certificate("manual")
    assert cert.current == first.version
    assert len(cert.completed_versions()) == 1
    assert cert.require_operation().status == "completed"  # no new operation was opened
    fired = of_type(ledger, "manual", "LifetimeActionTriggered")
    assert [(e.action, e.trigger, e.outcome) for e in fired] == [
        ("EmailContacts", "lifetime_percentage=80", "notify")
    ]
    assert of_type(ledger, "manual", "RenewalAttempted") == []

    # Past its expiry: the near-expiry notice came too late (skipped), Expired notifies.
    move_to(clock, ledger, "manual", 1.01)
    run(worker)
    fired = of_type(ledger, "manual", "LifetimeActionTriggered")
    assert [(e.action, e.outcome) for e in fired] == [
        ("EmailContacts", "notify"),
        ("NearExpiry", "skipped"),
        ("Expired", "notify"),
    ]
    assert ledger.certificate("manual").current == first.version


def merge_signed_by_a_ca(ledger: Ledger, name: str, openssl: Any) -> None:
    """Sign the pending CSR with a throwaway openssl CA and merge it (issuer Unknown)."""
    import base64
    import tempfile

    pending = ledger.certificate(name).pending_version()
    assert pending.csr_der is not None
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "req.der").write_bytes(base64.b64decode(pending.csr_der))
        openssl("req", "-inform", "DER", "-in", d / "req.der", "-out", d / "req.pem")
        openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            d / "ca.key",
            "-out",
            d / "ca.pem",
            "-subj",
            "/CN=Test CA",
            "-days",
            "2",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            d / "req.pem",
            "-CA",
            d / "ca.pem",
            "-CAkey",
            d / "ca.key",
            "-CAcreateserial",
            "-out",
            d / "leaf.pem",
            "-days",
            "365",
        )
        ledger.merge_certificate(Ctx("admin"), name, (d / "leaf.pem").read_bytes())


def test_a_failed_renewal_is_recorded_with_the_ca_error_and_retried_with_backoff(
    open_at: Open, clock: Clock, tmp_path: Path
) -> None:
    ledger = open_at(near_expiry_days=0, renewal_attempts=2, renewal_backoff=3600)
    worker = Worker(ledger, FAST)
    ctx = Ctx("admin")
    journal = tmp_path / "journal.txt"
    ledger.set_issuer(ctx, "flaky", provider="Counting", provider_params={"journal": str(journal)})
    ledger.create_certificate(ctx, "flaky-web", build_policy(issuer="flaky"))
    first = worker.drive("flaky-web").version_of(None)
    # The CA becomes unreachable before the renewal falls due.
    ledger.set_issuer(
        ctx,
        "flaky",
        provider="Counting",
        provider_params={"journal": str(journal), "always_fail": True},
    )

    move_to(clock, ledger, "flaky-web", 0.81)
    # The CA's tries wait for their backoff (real time): rounds until the renewal has failed.
    run_until(worker, lambda: bool(of_type(ledger, "flaky-web", "RenewalFailed")))
    failed = of_type(ledger, "flaky-web", "RenewalFailed")
    assert len(failed) == 1
    assert failed[0].attempt == 1
    assert failed[0].code == "ProviderError"
    assert "CA endpoint unreachable" in failed[0].message
    assert failed[0].retry_at is not None
    # The retry waits for its time: an hour later by the ledger's clock.
    assert abs((failed[0].retry_at - clock()).total_seconds() - 3600) < 60
    assert [type(e).__name__ for e in of_type(ledger, "flaky-web", "RetryScheduled")] == [
        "RetryScheduled"
    ]
    run(worker)
    assert len(of_type(ledger, "flaky-web", "RenewalAttempted")) == 1

    clock.offset += timedelta(hours=1, seconds=1)
    run_until(worker, lambda: len(of_type(ledger, "flaky-web", "RenewalFailed")) == 2)
    attempts = of_type(ledger, "flaky-web", "RenewalAttempted")
    assert [e.attempt for e in attempts] == [1, 2]
    failed = of_type(ledger, "flaky-web", "RenewalFailed")
    assert [(e.attempt, e.retry_at) for e in failed][1] == (2, None)  # gave up
    assert failed[1].message.endswith("(gave up after 2 renewal attempts)")
    cert = ledger.certificate("flaky-web")
    assert cert.current == first.version
    assert cert.versions[first.version].renewal is not None
    assert cert.versions[first.version].renewal.gave_up  # type: ignore[union-attr]
    run(worker)
    assert len(of_type(ledger, "flaky-web", "RenewalAttempted")) == 2
    # The creation's order, then each renewal attempt's tries of the CA.
    assert len(journal_lines(journal, "attempt")) == 1 + 2 * FAST.max_attempts


def test_two_workers_fire_each_trigger_once(open_at: Open, clock: Clock) -> None:
    ledgers = [open_at(near_expiry_days=30) for _ in range(2)]
    ctx = Ctx("admin")
    names = [f"race-{i}" for i in range(5)]
    for name in names:
        ledgers[0].create_certificate(ctx, name, build_policy())
    workers = [Worker(led, FAST) for led in ledgers]
    for name in names:
        workers[0].drive(name)
    move_to(clock, ledgers[0], names[0], 0.95)  # past 80% and within 30 days of expiry
    race(workers, rounds=8, timeout=120)
    for name in names:
        cert = ledgers[0].certificate(name)
        assert len(cert.completed_versions()) == 2, name
        fired = of_type(ledgers[0], name, "LifetimeActionTriggered")
        keys = sorted((e.version, e.action) for e in fired)
        assert len(keys) == len(set(keys)) == 2, keys  # AutoRenew and NearExpiry, once each
        assert len(of_type(ledgers[0], name, "RenewalAttempted")) == 1


def test_the_lifetime_view_and_plan(open_at: Open, clock: Clock) -> None:
    from ledger.lifetime.rules import plan

    ledger = open_at(near_expiry_days=30)
    worker = Worker(ledger, FAST)
    ledger.create_certificate(Ctx("admin"), "planned", build_policy())
    first = worker.drive("planned").version_of(None)
    assert first.not_before is not None and first.not_after is not None
    projector, queries = open_views(ledger)
    try:
        projector.catch_up()
        [facts] = lifetime_facts(queries.db, "planned")
        assert facts.version == first.version and facts.exp == first.not_after
        now = clock()
        items = plan(facts, now, first.not_after + timedelta(days=1), 30, 3)
        assert [(p.action, p.outcome) for p in items] == [
            ("AutoRenew", "renew"),
            ("NearExpiry", "notify"),
            ("Expired", "notify"),
        ]
        assert items[0].when == first.not_before + (first.not_after - first.not_before) * 0.8
        assert items[1].when == first.not_after - timedelta(days=30)
        assert plan(facts, now, now + timedelta(days=30), 30, 3) == []
    finally:
        projector.db.close()
