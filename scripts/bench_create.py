"""Self-signed creation to "completed" through the Python API, against raw `cryptography`.

For each key type, N certificates are created through the ledger (create, then the
worker self-signs and promotes; events in SQLite) and N key pairs are generated and
self-signed with `cryptography` alone in the same run. Prints the per-certificate
times, certificates per second and the ratio ledger / raw.

    python scripts/bench_create.py [--count N] [--rsa-count N] [--dir DIR]

--dir puts the ledger elsewhere (e.g. /dev/shm, to see the cost without disk syncs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.policy import policy_from_options
from ledger.pki import generate_private_key, self_signed
from ledger.profile import profile_from_policy
from ledger.settings import Settings
from ledger.worker import Worker


def timed(count: int, fn: Callable[[int], None]) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return times


def bench(kty: str, count: int, home: Path) -> dict[str, float]:
    size, curve = (2048, None) if kty == "RSA" else (None, "P-256")
    policy = policy_from_options(
        subject="CN=bench.example",
        sans=["bench.example"],
        kty=kty,
        size=size,
        curve=curve,
        validity_months=12,
        issuer="Self",
        content_type=None,
    )
    profile = profile_from_policy(policy)

    def raw(_: int) -> None:
        key = generate_private_key(kty, size, curve)
        self_signed(key, profile, now=datetime.now(UTC))

    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    worker = Worker(ledger)
    ctx = Ctx("admin")

    def through_ledger(i: int) -> None:
        name = f"{kty.lower()}-{i}"
        accepted = ledger.create_certificate(ctx, name, policy)
        op = worker.drive(name, cert=accepted).require_operation()
        assert op.status == "completed", op

    # Warm up both paths, then interleave rounds so drift affects both alike.
    raw(0)
    through_ledger(10**6)
    raw_times: list[float] = []
    ledger_times: list[float] = []
    rounds = 5
    for r in range(rounds):
        n = count // rounds
        raw_times += timed(n, raw)
        ledger_times += timed(n, lambda i, r=r, n=n: through_ledger(r * n + i))
    ledger.close()
    raw_med, ledger_med = statistics.median(raw_times), statistics.median(ledger_times)
    return {
        "raw_ms": raw_med * 1000,
        "ledger_ms": ledger_med * 1000,
        "ratio": statistics.mean(ledger_times) / statistics.mean(raw_times),
        "ledger_per_s": len(ledger_times) / sum(ledger_times),
        "raw_per_s": len(raw_times) / sum(raw_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="EC P-256 certificates")
    parser.add_argument("--rsa-count", type=int, default=100, help="RSA-2048 certificates")
    parser.add_argument("--dir", default=None, help="where to make the ledger (default: $TMPDIR)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = {
            "EC P-256": bench("EC", args.count, Path(tmp) / "ec"),
            "RSA-2048": bench("RSA", args.rsa_count, Path(tmp) / "rsa"),
        }
    print(f"{'key':<10} {'raw ms':>8} {'ledger ms':>10} {'ratio':>6} {'ledger/s':>9} {'raw/s':>8}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['raw_ms']:>8.2f} {r['ledger_ms']:>10.2f} {r['ratio']:>6.2f}"
            f" {r['ledger_per_s']:>9.1f} {r['raw_per_s']:>8.1f}"
        )


if __name__ == "__main__":
    main()
