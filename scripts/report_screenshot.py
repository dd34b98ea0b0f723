"""Make the sample reports and the screenshots kept in docs/ (headless Chromium).

A ledger in a temporary home gets a few certificate histories: `web` (five versions: a
reused key, a failed and a cancelled operation, an order from a LocalCA that cut the
validity short, a gap and an overlap), `legacy` (an RSA-1024 SHA-1 certificate without SAN,
made by openssl and imported), `api` (renewed in time) and `old` (expired, never renewed).
Then `certledger report compliance|lineage --format html` and a screenshot of each
(docs/report-compliance.png, docs/report-lineage.png).

    python scripts/report_screenshot.py [--out docs]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.bootstrap import open_ledger  # noqa: E402
from ledger.domain.context import Ctx  # noqa: E402
from ledger.settings import Settings  # noqa: E402
from ledger.worker import Worker  # noqa: E402
from tests.integration.conftest import Clock, build_policy  # noqa: E402
from tests.support.chromium import screenshot  # noqa: E402
from tests.support.report_story import build_story  # noqa: E402


def legacy_bundle(tmp: Path) -> bytes:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-sha1",
            "-days",
            "20",
            "-subj",
            "/CN=legacy",
            "-nodes",
            "-keyout",
            str(tmp / "legacy.key"),
            "-out",
            str(tmp / "legacy.crt"),
        ],
        check=True,
        capture_output=True,
    )
    return (tmp / "legacy.key").read_bytes() + (tmp / "legacy.crt").read_bytes()


def build(home: Path, tmp: Path) -> None:
    clock = Clock()
    ctx = Ctx("admin")
    ledger = open_ledger(Settings.resolve(home=home, environ={}), clock=clock)
    worker = Worker(ledger)
    try:
        build_story(ledger, clock, ctx, build_policy)
        for offset, name in ((-420, "old"), (-300, "api"), (-60, "api")):
            clock.offset = timedelta(days=offset)
            ledger.create_certificate(
                ctx, name, build_policy(issuer="Self", subject=f"CN={name}.example.com")
            )
            worker.drive(name)
        clock.offset = timedelta(0)
        ledger.import_certificate(
            ctx,
            "legacy",
            legacy_bundle(tmp),
            policy=build_policy(kty="RSA", subject="CN=legacy", dns_names=()),
        )
    finally:
        worker.close()
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        build(home, tmp)
        exe = Path(sys.executable).parent / "certledger"
        for kind, height in (("compliance", 1500), ("lineage", 1700)):
            page = tmp / f"report-{kind}.html"
            subprocess.run(
                [str(exe), "--home", str(home), "report", kind, "--format", "html", "--out", page],
                check=True,
            )
            png = out / f"report-{kind}.png"
            screenshot(page, png, width=1280, height=height)
            print(f"{page} -> {png} ({png.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
