"""What the audit log costs: the write path, full verification, and proofs at a million events.

1. Write path. Two ledgers in the same run, one with the recorder's Merkle leaves switched
   off (`recorder.audit_leaves = False`), the other as shipped. In interleaved rounds each
   saves the same commands: `update_certificate` (one event per transaction, the lightest
   save there is) and raw `recorder.insert_events` of two real events per transaction
   (no application work at all: the strictest ratio).
2. Verification. N events (default 1,000,000) copied from real certificate histories under
   fresh stream ids are written in bulk through the real recorder (leaves included); then
   the ledger signs a checkpoint and `audit verify` recomputes every leaf and root.
3. Proofs. Inclusion proofs for random positions, and a consistency proof, at that size.

    python scripts/bench_audit.py [--events N] [--saves N] [--dir DIR] [--rounds N]
                                  [--database-url postgresql://USER@HOST:PORT/DB]

--dir puts the ledgers elsewhere (e.g. /dev/shm, to see the cost without disk syncs).
--database-url puts them on PostgreSQL instead, each in a new schema dropped at the end.
--saves 0 skips the write path.

Verification is timed in `--rounds` rounds, each also timing two baselines on the same log:
reading every event as verification reads it (one process), and reading plus one SHA-256
of each event's stored state (the least any verifier of these events must do). CPU time is
this process's and its workers' (not the PostgreSQL server's).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from eventsourcing.persistence import StoredEvent
from synthetic import bench_policy

from ledger.application import Ledger
from ledger.audit.verifier import default_jobs
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.policy import policy_from_options
from ledger.recorder import LedgerPostgresRecorder, LedgerSQLiteRecorder
from ledger.settings import Settings
from ledger.worker import Worker

CTX = Ctx("admin")
#: A PostgreSQL database URL (main sets it): ledgers go in new schemas there.
PG_URL: str | None = None
SCHEMAS: dict[Path, str] = {}


def database_url(home: Path) -> str | None:
    """None (SQLite in `home`) or the URL of this ledger's own PostgreSQL schema."""
    if PG_URL is None:
        return None
    if home not in SCHEMAS:
        schema = SCHEMAS[home] = f"bench_audit_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_URL}?schema={SCHEMAS[home]}"


def drop_schemas() -> None:
    if PG_URL is None or not SCHEMAS:
        return
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in SCHEMAS.values():
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_at(home: Path) -> Ledger:
    return open_ledger(Settings.resolve(home=home, environ={}, database_url=database_url(home)))


def new_ledger(home: Path, leaves: bool) -> Ledger:
    ledger = open_at(home)
    assert isinstance(ledger.recorder, (LedgerSQLiteRecorder, LedgerPostgresRecorder))
    ledger.recorder.audit_leaves = leaves
    return ledger


def templates(home: Path, certificates: int = 8) -> list[list[StoredEvent]]:
    """Real stored events: the histories of a few self-signed certificates."""
    ledger = open_at(home)
    policy = bench_policy()
    worker = Worker(ledger)
    streams = []
    for i in range(certificates):
        cert = ledger.create_certificate(CTX, f"t{i}", policy)
        worker.drive(f"t{i}")
        ledger.update_certificate(CTX, f"t{i}", tags={"team": "payments"})
        streams.append(list(ledger.recorder.select_events(cert.id)))
    ledger.close()
    return streams


def interleaved(
    count: int, runs: dict[str, Callable[[int], None]]
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per operation of each run, alternating runs op by op."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(count):
        for name, run in runs.items():
            w, c = time.perf_counter(), time.process_time()
            run(i)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    return {n: (statistics.median(wall[n]), statistics.mean(cpu[n])) for n in runs}


def bench_write_path(base: Path, saves: int, streams: list[list[StoredEvent]]) -> None:
    plain = new_ledger(base / "plain", leaves=False)
    audited = new_ledger(base / "audited", leaves=True)
    policy = policy_from_options(
        subject="CN=w.example",
        sans=[],
        kty="EC",
        size=None,
        curve="P-256",
        validity_months=12,
        issuer="Self",
        content_type=None,
    )
    for ledger in (plain, audited):
        ledger.create_certificate(CTX, "w", policy)
        Worker(ledger).drive("w")

    def update(ledger: Ledger) -> Callable[[int], None]:
        return lambda i: ledger.update_certificate(CTX, "w", tags={"n": str(i)}) and None

    pairs = [e for s in streams for e in s]

    def insert(ledger: Ledger) -> Callable[[int], None]:
        def run(i: int) -> None:
            sid = uuid.uuid4()
            a, b = pairs[(2 * i) % len(pairs)], pairs[(2 * i + 1) % len(pairs)]
            ledger.recorder.insert_events(
                [StoredEvent(sid, 1, a.topic, a.state), StoredEvent(sid, 2, b.topic, b.state)]
            )

        return run

    for label, make in (("update_certificate", update), ("insert_events x2", insert)):
        got = interleaved(saves, {"off": make(plain), "on": make(audited)})
        (off, off_cpu), (on, on_cpu) = got["off"], got["on"]
        print(
            f"write path, {label:<18}: median without leaves {off * 1e3:.3f} ms "
            f"({1 / off:,.0f}/s), with {on * 1e3:.3f} ms ({1 / on:,.0f}/s): "
            f"ratio {on / off:.3f}; CPU per save {off_cpu * 1e3:.3f} / {on_cpu * 1e3:.3f} ms: "
            f"ratio {on_cpu / off_cpu:.3f}"
        )
    plain.close()
    audited.close()


@contextmanager
def timed(into: list[tuple[float, float]]) -> Iterator[None]:
    """Appends (wall, CPU) seconds, CPU of this process and its finished workers."""
    before, start = os.times(), time.perf_counter()
    yield
    after = os.times()
    into.append((time.perf_counter() - start, sum(after[:4]) - sum(before[:4])))


def read_events(ledger: Ledger, hash_states: bool) -> int:
    """Every stored event as verification reads it, in one process; optionally one SHA-256
    of each state."""
    store, sha256, count = ledger.audit.store, hashlib.sha256, 0
    with store.snapshot():
        for batch in store.iter_events():
            if hash_states:
                [sha256(row[3]).digest() for row in batch]
            count += len(batch)
    return count


def bench_verify(ledger: Ledger, rounds: int) -> None:
    """Verification and its baselines, interleaved in rounds; medians."""
    jobs_list = sorted({1, 2, default_jobs()})
    runs: dict[str, list[tuple[float, float]]] = {}
    events = 0
    for _ in range(rounds):
        with timed(runs.setdefault("read", [])):
            events = read_events(ledger, hash_states=False)
        with timed(runs.setdefault("read+sha", [])):
            read_events(ledger, hash_states=True)
        for jobs in jobs_list:
            with timed(runs.setdefault(f"verify{jobs}", [])):
                report = ledger.audit.verify(jobs=jobs)
            assert report.ok, report.problems
            assert report.events == events
    wall = {name: statistics.median(w for w, _ in got) for name, got in runs.items()}
    cpu = {name: statistics.median(c for _, c in got) for name, got in runs.items()}
    labels = {"read": "baseline: read every event", "read+sha": "baseline: read + SHA-256(state)"}
    # Workers started by a fork server (when other threads run) are not this process's
    # children: their CPU time is not counted.
    forkserver = threading.active_count() > 1
    for name in runs:
        label = labels.get(name) or f"audit verify, {name.removeprefix('verify')} process(es)"
        line = f"{label:<32}: {wall[name]:6.2f} s, {events / wall[name]:>9,.0f} events/s; "
        if forkserver and name.startswith("verify") and name != "verify1":
            line += "CPU not counted (workers under a fork server)"
        else:
            line += f"{cpu[name]:.2f} CPU-s ({events / cpu[name]:,.0f} events per CPU-second)"
        if name.startswith("verify"):
            line += (
                f"; time / read {wall[name] / wall['read']:.2f}, "
                f"/ read+sha {wall[name] / wall['read+sha']:.2f}"
            )
        print(line)
    print(f"(medians of {rounds} rounds; load average {os.getloadavg()[0]:.1f})")


def bench_verify_and_proofs(
    base: Path, events: int, streams: list[list[StoredEvent]], rounds: int
) -> None:
    home = base / "big"
    ledger = new_ledger(home, leaves=True)
    start = time.perf_counter()
    written = 0
    batch: list[StoredEvent] = []
    rng = random.Random(7)
    while written < events:
        template = streams[rng.randrange(len(streams))][: events - written]
        sid = uuid.UUID(int=rng.getrandbits(128), version=4)
        batch.extend(StoredEvent(sid, e.originator_version, e.topic, e.state) for e in template)
        written += len(template)
        if len(batch) >= 5000 or written >= events:
            ledger.recorder.insert_events(batch)
            batch = []
    write_s = time.perf_counter() - start
    size = ledger.audit.store.size()
    print(f"bulk write: {size:,} events with leaves in {write_s:.1f} s ({size / write_s:,.0f}/s)")

    start = time.perf_counter()
    checkpoint = ledger.audit.checkpoint()
    print(f"checkpoint at {checkpoint.size:,}: {(time.perf_counter() - start) * 1e3:.1f} ms")
    ledger.close()

    ledger = new_ledger(home, leaves=True)
    bench_verify(ledger, rounds)

    positions = [rng.randrange(checkpoint.size) for _ in range(1000)]
    times = []
    for p in positions:
        start = time.perf_counter()
        ledger.audit.tree(checkpoint.size).inclusion_proof(p)
        times.append(time.perf_counter() - start)
    times.sort()
    print(
        f"inclusion proof at {checkpoint.size:,}: median {statistics.median(times) * 1e3:.3f} ms, "
        f"p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms, max {times[-1] * 1e3:.3f} ms"
    )
    start = time.perf_counter()
    ledger.audit.tree(checkpoint.size).consistency_proof(checkpoint.size // 3 + 1)
    print(f"consistency proof: {(time.perf_counter() - start) * 1e3:.3f} ms")
    ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for verify")
    parser.add_argument("--saves", type=int, default=2000, help="saves per write-path run")
    parser.add_argument("--dir", default=None, help="where to make the ledgers (default: $TMPDIR)")
    parser.add_argument("--rounds", type=int, default=3, help="verification rounds")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    global PG_URL
    PG_URL = args.database_url
    where = "PostgreSQL" if PG_URL else f"SQLite in {args.dir or tempfile.gettempdir()}"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; {where}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        streams = templates(base / "templates")
        sizes = [len(e.state) for s in streams for e in s]
        print(
            f"event templates: {len(sizes)} real events, state {min(sizes)}-{max(sizes)} "
            f"bytes (mean {statistics.mean(sizes):.0f})"
        )
        try:
            if args.saves:
                bench_write_path(base, args.saves, streams)
            bench_verify_and_proofs(base, args.events, streams, args.rounds)
        finally:
            drop_schemas()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
