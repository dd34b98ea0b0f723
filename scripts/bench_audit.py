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

    python scripts/bench_audit.py [--events N] [--saves N] [--dir DIR]

--dir puts the ledgers elsewhere (e.g. /dev/shm, to see the cost without disk syncs).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.audit.verifier import default_jobs
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.policy import policy_from_options
from ledger.recorder import LedgerSQLiteRecorder
from ledger.settings import Settings
from ledger.worker import Worker

CTX = Ctx("admin")


def new_ledger(home: Path, leaves: bool) -> Ledger:
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    assert isinstance(ledger.recorder, LedgerSQLiteRecorder)
    ledger.recorder.audit_leaves = leaves
    return ledger


def templates(home: Path, certificates: int = 8) -> list[list[StoredEvent]]:
    """Real stored events: the histories of a few self-signed certificates."""
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    policy = policy_from_options(
        subject="CN=bench.example",
        sans=["bench.example"],
        kty="EC",
        size=None,
        curve="P-256",
        validity_months=12,
        issuer="Self",
        content_type=None,
    )
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


def bench_verify_and_proofs(base: Path, events: int, streams: list[list[StoredEvent]]) -> None:
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
    for jobs in (1, default_jobs()):
        before = os.times()
        start = time.perf_counter()
        report = ledger.audit.verify(jobs=jobs)
        verify_s = time.perf_counter() - start
        after = os.times()
        cpu_s = sum(after[:4]) - sum(before[:4])  # this process and its workers
        assert report.ok, report.problems
        print(
            f"audit verify, {jobs} process(es): {report.events:,} events in {verify_s:.2f} s "
            f"({report.events / verify_s:,.0f} events/s); {cpu_s:.2f} CPU-s "
            f"({report.events / cpu_s:,.0f} events per CPU-second)"
        )

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
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        streams = templates(base / "templates")
        sizes = [len(e.state) for s in streams for e in s]
        print(
            f"event templates: {len(sizes)} real events, state {min(sizes)}-{max(sizes)} "
            f"bytes (mean {statistics.mean(sizes):.0f})"
        )
        bench_write_path(base, args.saves, streams)
        bench_verify_and_proofs(base, args.events, streams)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
