"""Report performance: lineage and compliance over a large ledger, database vs Python.

1. A ledger of `--certs` certificates with `--versions` versions each is written in bulk
   (`synthetic.generate_lineage`: each certificate has its own certificate and policy, and
   the policy changes between versions) and the views are caught up. Not measured; printed.
2. Each report is built from the live views as the CLI builds it for JSON and written to a
   file. Printed: the time in the database (executing the queries and fetching the rows)
   and in Python (building the report), each added up over the processes that built it (two
   from 20,000 certificates on, so the build's wall time is less than their sum); the wall
   time of the build and of writing the JSON; the time to build the report from dicts and
   write it as CSV (as `--format csv` does); the output sizes.
3. Baseline, in the same run: fetching the same rows with one plain SELECT of the views, and
   `json.dumps` of those raw rows, so the ratios say what the report adds to the reading.

    python scripts/bench_reports.py [--certs 100000] [--versions 3] [--pg postgresql://...]
                                    [--dir DIR]   # keep the ledger in DIR and reuse it
    (with --dir, a ledger that already has certificates is reused: nothing is generated)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthetic import generate_lineage

from ledger.bootstrap import open_ledger, open_views
from ledger.database import Db
from ledger.reports.model import Checkpoint
from ledger.reports.run import ViewsAt, build_report, views_position, write_report
from ledger.reports.source import VERSION_COLUMNS
from ledger.settings import Settings


class TimedDb:
    """A `Db` whose `execute` time (the query and fetching its rows) is added up."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.url = db.url
        self.seconds = 0.0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        start = time.perf_counter()
        try:
            return self.db.execute(sql, params)
        finally:
            self.seconds += time.perf_counter() - start


def settings_for(base: Path, pg: str | None) -> Settings:
    url = None
    if pg:
        url = f"{pg}?schema=bench_{uuid.uuid4().hex[:8]}" if "schema=" not in pg else pg
    return Settings.resolve(home=base / "home", database_url=url, environ={})


def baseline(db: Db) -> tuple[float, float, int]:
    """Seconds to SELECT every version with the report's columns, and to json.dumps them."""
    start = time.perf_counter()
    rows = db.execute(
        f"SELECT c.name, {VERSION_COLUMNS} FROM v_versions v"
        " JOIN v_current c ON c.cert_id = v.cert_id"
        " LEFT JOIN v_lineage l ON l.cert_id = v.cert_id AND l.version = v.version"
    )
    selected = time.perf_counter() - start
    start = time.perf_counter()
    json.dumps(rows)
    return selected, time.perf_counter() - start, len(rows)


def measure(kind: str, db: Db, out: Path) -> dict[str, float]:
    timed = TimedDb(db)
    checkpoint = Checkpoint("bench", 0, "unavailable")
    views = ViewsAt(timed, views_position(db), datetime.now(UTC))  # type: ignore[arg-type]
    timed.seconds = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    built = build_report(kind, views, lambda: checkpoint)
    total = time.perf_counter() - start
    figures = {
        "db": timed.seconds,
        "python": total - timed.seconds,
        "build": total,
        "build_cpu": time.process_time() - cpu,
    }
    if built.timings is not None:  # added up over the processes that built it
        figures["db"], figures["python"] = built.timings.db, built.timings.python
        figures["build_cpu"] = built.timings.cpu
    for fmt in ("json", "csv"):
        path = out / f"{kind}.{fmt}"
        start, cpu = time.perf_counter(), time.process_time()
        if fmt == "csv":  # CSV is written from the whole document: built (again) from dicts
            built = build_report(kind, views, lambda: checkpoint, lines=False)
        with path.open("w", encoding="utf-8", newline="") as stream:
            write_report(built, fmt, stream)
        figures[fmt] = time.perf_counter() - start
        figures[f"{fmt}_cpu"] = time.process_time() - cpu
        figures[f"{fmt}_mb"] = path.stat().st_size / 1e6
    count = built.summary.get("findings", built.summary.get("versions"))
    figures["items"] = float(count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--pg", help="run on this PostgreSQL URL instead of SQLite")
    parser.add_argument("--dir", help="keep the ledger here (reused when it has events)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.dir) if args.dir else Path(tmp)
        ledger = open_ledger(settings_for(base, args.pg))
        backend = "postgresql" if args.pg else "sqlite"
        print(f"== {backend}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        if ledger.find_certificate("cert-0000000") is None:
            start = time.perf_counter()
            events = generate_lineage(ledger, args.certs, args.versions)
            print(f"generated {events:,} events in {time.perf_counter() - start:.0f} s")
        projector, _ = open_views(ledger)
        start = time.perf_counter()
        applied = projector.catch_up(batch_size=5000)
        print(f"views caught up: {applied:,} events in {time.perf_counter() - start:.0f} s")
        db = projector.db
        certs = db.execute("SELECT COUNT(*) FROM v_current")[0][0]
        selected, dumped, versions = baseline(db)
        print(
            f"{certs:,} certificates, {versions:,} versions; baseline: SELECT {selected:.2f} s,"
            f" json.dumps of the rows {dumped:.2f} s"
        )
        out = base / "out"
        out.mkdir(exist_ok=True)
        print(
            "seconds of wall time (CPU seconds in brackets: for build, of every process that"
            " built it); database and python: added up over those processes;"
            " ratio = (build + JSON) / baseline (SELECT + json.dumps)"
        )
        header = (
            f"{'report':<11} {'database':>9} {'python':>7} {'build':>15} {'json':>15}"
            f" {'csv':>15} {'build+json':>11} {'ratio':>6} {'items':>9} {'json MB':>8}"
        )
        print(header)
        for kind in ("lineage", "compliance"):
            f = measure(kind, db, out)
            build = f["build"]
            ratio = (build + f["json"]) / (selected + dumped)
            print(
                f"{kind:<11} {f['db']:>9.2f} {f['python']:>7.2f}"
                f" {build:>6.2f} ({f['build_cpu']:>6.2f}) {f['json']:>6.2f} ({f['json_cpu']:>6.2f})"
                f" {f['csv']:>6.2f} ({f['csv_cpu']:>6.2f}) {build + f['json']:>11.2f}"
                f" {ratio:>5.1f}x {int(f['items']):>9,} {f['json_mb']:>8.0f}"
            )
        ledger.close()


if __name__ == "__main__":
    main()
