"""Read-model performance: rebuild throughput, live lag, and query latency.

1. Rebuild: a ledger of `--certs` certificates with two versions each (12 events per
   certificate) is written in bulk; every view is then rebuilt from zero, in one process
   and shared out over `--jobs` processes. Printed: events/s, and the ratio to a raw
   SELECT of the events table (the recorder's select_notifications) in the same run.
2. Live lag: a follower keeps the views current while certificates are created; the
   time from each commit to the view reaching it is measured (p50/p99).
3. Query latency: by name and by inventory filter at 1k, 10k and 100k certificates.

    python scripts/bench_projections.py [--certs 100000] [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from synthetic import generate

from ledger.application import Ledger
from ledger.bootstrap import open_ledger, open_views
from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.settings import Settings
from projections.projector import VIEW_CLASSES, Projector
from projections.source import EventLog

CTX = Ctx("bench")


def raw_select_seconds(ledger: Ledger) -> float:
    start = time.perf_counter()
    position = 0
    while True:
        rows = ledger.recorder.select_notifications(start=position + 1, limit=5000)
        if not rows:
            break
        position = rows[-1].id
    return time.perf_counter() - start


def per_view(ledger: Ledger, events: int) -> None:
    """Each view rebuilt alone in one process, reading only the events it handles: its time,
    and that time less the raw SELECT's (in seconds per 240,000 events)."""
    db = ledger.settings.database.connect()
    log = EventLog(db)
    raw = raw_select_seconds(ledger)
    for cls in VIEW_CLASSES:
        projector = Projector(db, log, ledger.mapper, [cls()])
        start = time.perf_counter()
        projector.rebuild(jobs=1)
        took = time.perf_counter() - start
        beyond = max(0.0, took - raw) * 240_000 / events
        print(f"  {cls.name:<14} {took:6.2f} s  beyond reading {beyond:5.2f} s")
    db.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def live_lag(ledger: Ledger, samples: int) -> tuple[float, float]:
    projector, _ = open_views(ledger)
    follower, _ = open_views(ledger)
    stop = threading.Event()
    thread = threading.Thread(target=follower.follow, args=(stop, 0.02))
    thread.start()
    lags: list[float] = []
    try:
        for i in range(samples):
            cert = Certificate.register(CTX, f"live-{uuid.uuid4().hex[:12]}")
            ledger.save(cert)
            committed = time.perf_counter()
            head = projector.head()
            while min(projector.positions().values()) < head:
                time.sleep(0.0005)
            lags.append(time.perf_counter() - committed)
            time.sleep(0.005 * (i % 3))
    finally:
        stop.set()
        thread.join()
        projector.db.close()
        follower.db.close()
    return percentile(lags, 0.5), percentile(lags, 0.99)


def query_latency(ledger: Ledger, certs: int, runs: int = 200) -> tuple[float, float]:
    projector, queries = open_views(ledger)
    projector.catch_up()

    def timed(fn: Callable[[int], object]) -> float:
        times = []
        for i in range(runs):
            start = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    by_name = timed(lambda i: queries.certificate(f"cert-{(i * 7919) % certs:07d}"))
    soon = datetime.now(UTC) + timedelta(days=400)
    by_filter = timed(
        lambda i: queries.inventory(
            issuer="Self",
            expires_within_days=400,
            now=soon - timedelta(days=400),
            limit=50,
            after=f"cert-{(i * 7919) % certs:07d}",
        )
    )
    projector.db.close()
    return by_name, by_filter


def settings_for(base: Path, name: str, pg: str | None) -> Settings:
    url = None
    if pg:
        schema = f"bench_{name}_{uuid.uuid4().hex[:6]}"
        url = f"{pg}{'&' if '?' in pg else '?'}schema={schema}"
    return Settings.resolve(home=base / name, database_url=url, environ={})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=100_000, help="certificates to rebuild")
    parser.add_argument("--pg", help="also run on this PostgreSQL URL (schemas are created)")
    parser.add_argument("--lag-samples", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2, help="processes for the second rebuild")
    parser.add_argument("--dir", help="where temporary ledgers go (default: the temp dir)")
    parser.add_argument(
        "--per-view", action="store_true", help="also rebuild each view alone, one process"
    )
    args = parser.parse_args()
    backends = [("sqlite", None)] + ([("postgresql", args.pg)] if args.pg else [])
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        for backend, pg in backends:
            print(f"== {backend}")
            ledger = open_ledger(settings_for(base, "rebuild", pg))
            start = time.perf_counter()
            events = generate(ledger, args.certs)
            print(f"generated {events} events in {time.perf_counter() - start:.1f} s")
            projector, _ = open_views(ledger)
            first = 0.0
            for jobs in dict.fromkeys((1, args.jobs)):
                raw = raw_select_seconds(ledger)
                first = first or raw
                start = time.perf_counter()
                projector.rebuild(jobs=jobs)
                took = time.perf_counter() - start
                print(
                    f"rebuild all views, {jobs} process(es): {took:.1f} s,"
                    f" {events / took:,.0f} events/s; raw SELECT {raw:.2f} s"
                    f" ({events / raw:,.0f} events/s); ratio {took / raw:.1f}x"
                    f" ({took / first:.1f}x to the first raw SELECT)"
                )
            if args.per_view:
                per_view(ledger, events)
            projector.db.close()
            p50, p99 = live_lag(ledger, args.lag_samples)
            print(f"live lag commit->view: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
            ledger.close()
            print(f"{'certificates':>12} {'by name ms':>11} {'by filter ms':>13}")
            for size in (1_000, 10_000, 100_000):
                if size > args.certs:
                    break
                sized = open_ledger(settings_for(base, f"q{size}", pg))
                generate(sized, size)
                by_name, by_filter = query_latency(sized, size)
                print(f"{size:>12,} {by_name:>11.2f} {by_filter:>13.2f}")
                sized.close()


if __name__ == "__main__":
    main()
