"""Cold start of `certledger cert show NAME --output json` on a large ledger.

Builds a ledger of `--certs` certificates (written in bulk, views rebuilt), then runs
the command `--runs` times as a new process, beside `python -c pass` in the same run,
and prints the medians and their ratio.

    python scripts/bench_cli.py [--certs 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import generate

from ledger.bootstrap import open_ledger, open_views
from ledger.settings import Settings


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("certledger")
    assert exe, "install certledger first (pip install .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        ledger = open_ledger(Settings.resolve(home=home, environ={}))
        start = time.perf_counter()
        events = generate(ledger, args.certs)
        projector, _ = open_views(ledger)
        projector.catch_up(batch_size=5000)
        print(
            f"ledger: {args.certs:,} certificates, {events:,} events "
            f"({time.perf_counter() - start:.0f} s to build)"
        )
        projector.db.close()
        ledger.close()
        name = f"cert-{args.certs // 2:07d}"
        show = [exe, "--home", str(home), "--output", "json", "cert", "show", name]
        bare = [sys.executable, "-c", "pass"]
        wall(show, env)  # the first run may warm the page cache
        shows, bares = [], []
        for _ in range(args.runs):
            shows.append(wall(show, env))
            bares.append(wall(bare, env))
        s, b = statistics.median(shows), statistics.median(bares)
        print(f"certledger cert show: median {s * 1000:.0f} ms")
        print(f"python -c pass:       median {b * 1000:.0f} ms")
        print(f"ratio {s / b:.1f}x")


if __name__ == "__main__":
    main()
