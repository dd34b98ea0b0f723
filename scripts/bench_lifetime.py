"""Lifetime actions and notifications: what they cost, as ratios to baselines of the same run.

1. Renewal vs creation: `--renew` Self certificates are created and completed (baseline), then
   the clock moves to 81% of their lifetime and the worker renews them all. Printed: seconds
   per certificate for each, and the ratio.
2. The idle pass: on a ledger of `--certs` certificates (written in bulk) with nothing due, one
   worker pass with the lifetime duties vs the pass over pending operations alone; and the
   first build of the lifetime view vs that of the versions view, on the same log.
3. Delivery: `--renew` certificates reach their near-expiry notice with a webhook configured;
   notifications raised and delivered per second, vs POSTing the same bodies straight to the
   same local receiver.

    python scripts/bench_lifetime.py [--certs 10000] [--renew 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

from synthetic import bench_policy, generate

from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.notification import Notification
from ledger.domain.policy import CertificatePolicy
from ledger.lifetime.settings import LifetimeSettings
from ledger.notify.message import cloud_event_body
from ledger.settings import Settings, WorkerSettings
from ledger.worker import Worker
from projections.lifetime import LifetimeView
from projections.projector import Projector
from projections.versions import VersionsView

CTX = Ctx("admin")
QUIET = WorkerSettings(lease_seconds=60)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def renewal_vs_creation(home: Path, count: int) -> tuple[float, float]:
    clock = Clock()
    settings = replace(
        Settings.resolve(home=home, environ={}), lifetime=LifetimeSettings(near_expiry_days=0)
    )
    ledger = open_ledger(settings, clock=clock)
    worker = Worker(ledger, QUIET)
    try:
        start = time.perf_counter()
        for i in range(count):
            ledger.create_certificate(CTX, f"r-{i:05d}", bench_policy())
        while worker.run_once():
            pass
        created = time.perf_counter() - start
        clock.offset = timedelta(days=365 * 0.81)
        start = time.perf_counter()
        while worker.run_once():
            pass
        renewed = time.perf_counter() - start
        done = sum(len(ledger.certificate(f"r-{i:05d}").completed_versions()) for i in range(count))
        assert done == 2 * count, done
        return created / count, renewed / count
    finally:
        worker.close()
        ledger.close()


def idle_pass(home: Path, certs: int) -> dict[str, float]:
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    try:
        events = generate(ledger, certs)
        builds = []
        for view_class in (VersionsView, LifetimeView):
            view = Projector(
                ledger.settings.database.connect(), ledger.recorder, ledger.mapper, [view_class()]
            )
            start = time.perf_counter()
            view.catch_up(batch_size=5000)
            builds.append(time.perf_counter() - start)
            view.db.close()
        worker = Worker(ledger, QUIET)
        worker.run_once()  # the first pass reads the log once
        ops, whole = [], []
        for _ in range(30):
            start = time.perf_counter()
            for _cert in worker.discover():
                pass
            ops.append(time.perf_counter() - start)
            start = time.perf_counter()
            worker.run_once()
            whole.append(time.perf_counter() - start)
        worker.close()
        return {
            "events": events,
            "versions_build": builds[0],
            "build": builds[1],
            "ops_pass": statistics.median(ops),
            "whole_pass": statistics.median(whole),
        }
    finally:
        ledger.close()


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def delivery(home: Path, count: int) -> dict[str, float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    clock = Clock()
    lifetime = LifetimeSettings(
        near_expiry_days=30,
        webhook_urls=(url,),
        webhook_secret="bench",
        webhook_events=frozenset({"NearExpiry"}),
    )
    settings = replace(Settings.resolve(home=home, environ={}), lifetime=lifetime)
    ledger = open_ledger(settings, clock=clock)
    worker = Worker(ledger, QUIET)
    try:
        data = bench_policy().to_kv_json()
        data["lifetime_actions"] = []
        quiet_policy = CertificatePolicy.from_kv_json(data)
        for i in range(count):
            ledger.create_certificate(CTX, f"n-{i:05d}", quiet_policy)
        while worker.run_once():
            pass
        clock.offset = timedelta(days=340)  # within 30 days of expiry
        runner = worker.lifetime
        start = time.perf_counter()
        while runner.schedule():
            pass
        fired = time.perf_counter() - start
        start = time.perf_counter()
        raised = runner.feed.run_once()
        raising = time.perf_counter() - start
        start = time.perf_counter()
        delivered = 0
        while n := runner.deliverer.run_once():
            delivered += n
        delivering = time.perf_counter() - start
        assert raised == delivered == count, (raised, delivered)
        notes = [
            ledger.repository.get(n.originator_id)
            for n in ledger.recorder.select_notifications(start=1, limit=100_000)
            if n.topic.endswith("Notification.Raised")
        ]
        bodies = [cloud_event_body(note, settings.vault_url) for note in notes]
        assert all(isinstance(note, Notification) for note in notes)
        start = time.perf_counter()
        for body in bodies:
            request = urllib.request.Request(url, data=body, method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        raw = time.perf_counter() - start
        return {
            "fired_per_s": count / fired,
            "raised_per_s": count / raising,
            "delivered_per_s": count / delivering,
            "raw_per_s": count / raw,
        }
    finally:
        worker.close()
        ledger.close()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=10_000)
    parser.add_argument("--renew", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        created, renewed = renewal_vs_creation(base / "renew", args.renew)
        print(f"renewal vs creation ({args.renew} Self EC P-256 certificates)")
        print(f"  create + complete   {created * 1000:8.2f} ms/certificate (baseline)")
        print(
            f"  renewal at 80%      {renewed * 1000:8.2f} ms/certificate  "
            f"ratio {renewed / created:.2f}"
        )
        idle = idle_pass(base / "idle", args.certs)
        print(f"idle worker pass ({args.certs} certificates, {int(idle['events'])} events)")
        print(f"  operations only     {idle['ops_pass'] * 1000:8.2f} ms (baseline)")
        print(
            f"  with lifetime       {idle['whole_pass'] * 1000:8.2f} ms  "
            f"ratio {idle['whole_pass'] / idle['ops_pass']:.2f}"
        )
        print(
            f"  lifetime view build {idle['build']:8.2f} s vs the versions view "
            f"{idle['versions_build']:.2f} s  ratio {idle['build'] / idle['versions_build']:.2f}"
        )
        d = delivery(base / "deliver", args.renew)
        print(f"notifications ({args.renew} near-expiry notices, one webhook)")
        print(f"  fired               {d['fired_per_s']:8.0f} /s")
        print(f"  raised (outbox)     {d['raised_per_s']:8.0f} /s")
        ratio = d["delivered_per_s"] / d["raw_per_s"]
        print(
            f"  delivered           {d['delivered_per_s']:8.0f} /s  "
            f"vs raw POST {d['raw_per_s']:.0f} /s  ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
