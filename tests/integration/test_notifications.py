"""Notifications delivered to a real SMTP server (STARTTLS and a login) and to a webhook
receiver that fails the first attempts: retried with backoff, each attempt recorded."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_ledger, open_views
from ledger.domain.context import Ctx
from ledger.domain.notification import notification_id
from ledger.lifetime.settings import LifetimeSettings, SmtpSettings
from ledger.notify.message import SIGNATURE_HEADER
from ledger.settings import Settings, WorkerSettings
from ledger.worker import Worker
from projections.notifications import notification_rows
from tests.integration.conftest import Clock, build_policy
from tests.support.receivers import SmtpServer, WebhookReceiver

SECRET = "hook-secret"
FAST = WorkerSettings(max_attempts=2, backoff=0.01, max_backoff=0.02, lease_seconds=5)
PROVIDERS = {"Counting": "tests.support.countingca:CountingProvider"}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=2).start()
    yield receiver
    receiver.stop()


def lifetime_settings(server: SmtpServer, hooks: WebhookReceiver, **more: Any) -> LifetimeSettings:
    values: dict[str, Any] = {
        "near_expiry_days": 30,
        "smtp": SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            starttls=True,
            username=server.username,
            password=server.password,
            sender="vault@example.com",
            ca_file=server.cert_file,
        ),
        "webhook_urls": (hooks.url,),
        "webhook_secret": SECRET,
        "delivery_backoff": 0.01,
        "delivery_max_backoff": 0.05,
    }
    values.update(more)
    return LifetimeSettings(**values)


@pytest.fixture
def notifying(
    settings: Settings, clock: Clock, smtp: SmtpServer, hooks: WebhookReceiver
) -> Iterator[Ledger]:
    configured = replace(
        settings, extra_providers=PROVIDERS, lifetime=lifetime_settings(smtp, hooks)
    )
    led = open_ledger(configured, clock=clock)
    try:
        yield led
    finally:
        led.close()


def settle(worker: Worker, ledger: Ledger, passes: int = 200) -> list[dict[str, Any]]:
    """Run the worker until no delivery is pending (at least `passes` times and 10 s, for
    retries to come due); the deliveries as the view shows them."""
    projector, queries = open_views(ledger)
    deadline = time.monotonic() + 10
    try:
        for done in itertools.count(1):
            worker.run_once()
            projector.catch_up()
            rows = notification_rows(queries.db)
            if rows and all(r["status"] != "pending" for r in rows):
                return rows
            if done >= passes and time.monotonic() > deadline:
                break
            time.sleep(0.002)
        raise AssertionError(f"deliveries still pending: {notification_rows(queries.db)}")
    finally:
        projector.db.close()


def test_every_notification_reaches_email_and_webhooks_once_per_version_and_trigger(
    notifying: Ledger, clock: Clock, smtp: SmtpServer, hooks: WebhookReceiver
) -> None:
    ledger = notifying
    ctx = Ctx("admin")
    ledger.set_contacts(ctx, [{"email": "ops@example.com"}, {"email": "alice@example.com"}])
    worker = Worker(ledger, FAST)
    ledger.create_certificate(ctx, "web", build_policy())
    first = worker.drive("web").version_of(None)
    assert first.not_before is not None and first.not_after is not None
    # 95% of its lifetime: AutoRenew (80%) and the near-expiry notice (30 days) are due.
    clock.offset = first.not_before + (first.not_after - first.not_before) * 0.95 - clock()

    rows = settle(worker, ledger)

    second = ledger.certificate("web").version_of(None)
    assert second.version != first.version
    cert_id = ledger.certificate("web").id
    expected = {
        (first.version, "Microsoft.KeyVault.CertificateNewVersionCreated"),
        (first.version, "Microsoft.KeyVault.CertificateNearExpiry"),
        (second.version, "Microsoft.KeyVault.CertificateNewVersionCreated"),
    }
    # Webhooks: the first two attempts of each event failed (503), the third was accepted.
    accepted = hooks.accepted()
    assert {(h.event["data"]["Version"], h.event["type"]) for h in accepted} == expected
    assert len(accepted) == 3
    assert len(hooks.received()) == 9
    for hook in accepted:
        digest = hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
        assert hook.headers[SIGNATURE_HEADER] == f"sha256={digest}"
        assert hook.headers["Content-Type"].startswith("application/cloudevents+json")
        event = hook.event
        assert event["specversion"] == "1.0"
        assert event["source"] == ledger.settings.vault_url
        assert event["subject"] == "web"
        data = event["data"]
        assert data["VaultName"] == "localhost"
        assert data["ObjectType"] == "Certificate"
        assert data["ObjectName"] == "web"
        assert data["Id"] == f"{ledger.settings.vault_url}/certificates/web/{data['Version']}"
        v = ledger.certificate("web").versions[data["Version"]]
        assert v.not_before is not None and v.not_after is not None
        assert data["NBF"] == int(v.not_before.timestamp())
        assert data["EXP"] == int(v.not_after.timestamp())
    near = next(h for h in accepted if h.event["type"].endswith("NearExpiry"))
    assert near.event["id"] == str(
        notification_id(cert_id, first.version, "NearExpiry", "NearExpiry:days_before_expiry=30")
    )
    # Email: one message per notification, to every contact, over STARTTLS with a login.
    mails = smtp.received()
    assert len(mails) == 3
    ids = {f"<{h.event['id']}@certledger>" for h in accepted}
    assert {m.message["Message-ID"] for m in mails} == ids
    for mail in mails:
        assert sorted(mail.recipients) == ["alice@example.com", "ops@example.com"]
        assert mail.sender == "vault@example.com"
        assert mail.message["Subject"].startswith("[certledger] Certificate web ")
    subjects = sorted(m.message["Subject"] for m in mails)
    assert subjects.count("[certledger] Certificate web has a new version") == 2
    assert "[certledger] Certificate web is about to expire" in subjects
    # The view shows each target's attempts and the last error.
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_target.setdefault(row["target"], []).append(row)
    assert {r["status"] for r in rows} == {"delivered"}
    assert [r["attempts"] for r in by_target["email"]] == [1, 1, 1]
    webhook_rows = by_target[f"webhook:{hooks.url}"]
    assert [r["attempts"] for r in webhook_rows] == [3, 3, 3]
    assert all("HTTP 503" in (r["last_error"] or "") for r in webhook_rows)

    # More passes, and a second worker: nothing is sent again.
    other = open_ledger(ledger.settings, clock=clock)
    try:
        again = Worker(other, FAST)
        for _ in range(5):
            again.run_once()
            worker.run_once()
        again.close()
    finally:
        other.close()
    assert len(hooks.received()) == 9 and len(smtp.received()) == 3


def test_a_failed_operation_notifies_with_the_ca_error(
    notifying: Ledger, hooks: WebhookReceiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    ledger = notifying
    ctx = Ctx("admin")
    worker = Worker(ledger, FAST)
    ledger.set_issuer(
        ctx,
        "down",
        provider="Counting",
        provider_params={"journal": str(tmp_path / "j.txt"), "always_fail": True},
    )
    ledger.create_certificate(ctx, "broken", build_policy(issuer="down"))
    op = worker.drive("broken", timeout=10).require_operation()
    assert op.status == "failed"

    settle(worker, ledger)

    [hook] = hooks.accepted()
    assert hook.event["type"] == "Microsoft.KeyVault.CertificateOperationFailed"
    assert hook.event["data"]["Version"] == op.version
    assert hook.event["data"]["NBF"] is None and hook.event["data"]["EXP"] is None
    assert hook.event["data"]["Error"] == {"code": op.error_code, "message": op.error_message}
    assert smtp.received() == []  # no contacts: no email target


def test_deliveries_that_keep_failing_give_up_and_stay_visible(
    settings: Settings, clock: Clock, smtp: SmtpServer
) -> None:
    hooks = WebhookReceiver(fail_first=1000).start()
    configured = replace(
        settings,
        lifetime=lifetime_settings(
            smtp,
            hooks,
            delivery_attempts=3,
            smtp=SmtpSettings(
                host="127.0.0.1",
                port=smtp.port,
                starttls=True,
                username=smtp.username,
                password="wrong-password",
                ca_file=smtp.cert_file,
            ),
        ),
    )
    ledger = open_ledger(configured, clock=clock)
    try:
        ctx = Ctx("admin")
        ledger.set_contacts(ctx, [{"email": "ops@example.com"}])
        worker = Worker(ledger, FAST)
        ledger.create_certificate(ctx, "web", build_policy())
        worker.drive("web")
        rows = settle(worker, ledger)
    finally:
        ledger.close()
        hooks.stop()
    assert {(r["target"].split(":")[0], r["status"], r["attempts"]) for r in rows} == {
        ("email", "failed", 3),
        ("webhook", "failed", 3),
    }
    errors = {r["target"].split(":")[0]: r["last_error"] for r in rows}
    assert "refused the login of 'certledger'" in errors["email"]
    assert "wrong-password" not in json.dumps(rows)
    assert "HTTP 503" in errors["webhook"]
    assert smtp.received() == []
    assert len(hooks.received()) == 3


def test_no_targets_no_notification(settings: Settings, clock: Clock) -> None:
    ledger = open_ledger(settings, clock=clock)
    try:
        worker = Worker(ledger)
        ledger.create_certificate(Ctx("admin"), "quiet", build_policy())
        worker.drive("quiet")
        worker.run_once()
        worker.close()
        topics = [n.topic for n in ledger.recorder.select_notifications(start=1, limit=1000)]
        assert not [t for t in topics if "Notification" in t]
    finally:
        ledger.close()
