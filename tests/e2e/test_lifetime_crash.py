"""Lifetime and notifications across real processes: a worker SIGKILLed mid-delivery and
restarted delivers every notification, and none twice per version and trigger.

The worker runs as `certledger --now <time> worker` with a real SMTP server (aiosmtpd:
STARTTLS and a login) and a webhook receiver that fails the first two attempts of each
event, both in this test process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.settings import Settings
from tests.e2e.test_worker_crash import base_env, exe
from tests.integration.conftest import build_policy
from tests.support.receivers import SmtpServer, WebhookReceiver

NAMES = ["alpha", "beta", "gamma"]
SECRET = "crash-secret"


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


def notify_env(smtp: SmtpServer, hooks: WebhookReceiver, **extra: str) -> dict[str, str]:
    return base_env(
        **smtp.env(),
        CERTLEDGER_WEBHOOK_URLS=hooks.url,
        CERTLEDGER_WEBHOOK_SECRET=SECRET,
        CERTLEDGER_DELIVERY_BACKOFF="0.05",
        CERTLEDGER_DELIVERY_MAX_BACKOFF="0.2",
        **extra,
    )


def certledger(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [exe(), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def kill_when_paused(proc: subprocess.Popen[bytes], step: str, timeout: float = 90) -> str:
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while f"paused after {step}".encode() not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no pause after {step}: {seen.decode(errors='replace')}"
            ready, _, _ = select.select([proc.stderr], [], [], remaining)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                assert chunk or proc.poll() is None, seen.decode(errors="replace")
                seen += chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return seen.decode(errors="replace")


def deliveries(home: Path, env: dict[str, str]) -> list[dict[str, object]]:
    out = certledger(home, env, "--output", "json", "notifications", "list").stdout
    rows: list[dict[str, object]] = json.loads(out)["value"]
    return rows


@pytest.mark.parametrize("step", ["sent", "delivered"])
def test_worker_killed_mid_delivery_then_restarted_delivers_each_notification_once(
    tmp_path: Path, smtp: SmtpServer, hooks: WebhookReceiver, step: str
) -> None:
    home = tmp_path / "home"
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    try:
        ctx = Ctx("admin")
        ledger.set_contacts(ctx, [{"email": "ops@example.com"}])
        for name in NAMES:
            ledger.create_certificate(ctx, name, build_policy(subject=f"CN={name}.example"))
    finally:
        ledger.close()
    # Issue the first versions (nothing to notify yet: no delivery is configured).
    certledger(home, base_env(), "worker", "--once")

    # 95% into their lifetime: AutoRenew (80%) and the 30-day notice fall due.
    soon = datetime.now(UTC) + timedelta(days=365 * 0.95)
    env = notify_env(smtp, hooks, CERTLEDGER_NOW=soon.isoformat())
    paused = subprocess.Popen(
        [exe(), "--home", str(home), "worker", "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**env, "CERTLEDGER_WORKER_PAUSE_AT": step},
    )
    kill_when_paused(paused, step)
    delivered_before = len(hooks.accepted()) + len(smtp.received())
    assert delivered_before >= 1

    later = notify_env(smtp, hooks, CERTLEDGER_NOW=(soon + timedelta(hours=1)).isoformat())
    worker = subprocess.Popen(
        [exe(), "--home", str(home), "worker", "--interval", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=later,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            rows = deliveries(home, later)
            if len(rows) == 6 * 2 and all(r["status"] == "delivered" for r in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0

    # Per certificate: a near-expiry notice for the first version, and a new version.
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    try:
        expected = set()
        for name in NAMES:
            cert = ledger.certificate(name)
            assert len(cert.completed_versions()) == 2
            old, new = sorted(cert.completed_versions(), key=lambda v: v.created)
            expected |= {
                (name, old.version, "Microsoft.KeyVault.CertificateNearExpiry"),
                (name, new.version, "Microsoft.KeyVault.CertificateNewVersionCreated"),
            }
    finally:
        ledger.close()

    accepted = hooks.accepted()
    seen = {(h.event["subject"], h.event["data"]["Version"], h.event["type"]) for h in accepted}
    assert seen == expected
    # One CloudEvent id per version and trigger...
    ids_by_notice: dict[tuple[str, str, str], set[str]] = {}
    for h in accepted:
        notice = (h.event["subject"], h.event["data"]["Version"], h.event["type"])
        ids_by_notice.setdefault(notice, set()).add(h.event["id"])
    assert all(len(ids) == 1 for ids in ids_by_notice.values())
    mails = smtp.received()
    message_ids = Counter(m.message["Message-ID"] for m in mails)
    assert set(message_ids) == {f"<{h.event['id']}@certledger>" for h in accepted}
    webhook_ids = Counter(h.event["id"] for h in accepted)
    repeats = sum(n - 1 for n in message_ids.values()) + sum(n - 1 for n in webhook_ids.values())
    if step == "delivered":
        # Killed after the delivery was recorded: nothing is sent twice.
        assert repeats == 0
    else:
        # Killed between sending and recording: that one message is sent again, with the
        # same id (at least once); every other one exactly once.
        assert repeats == 1
    assert len(webhook_ids) == len(message_ids) == 6
