"""PostgreSQL end to end: the CLI on a database URL, and several processes on one database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ledger.bootstrap import open_ledger, open_views
from ledger.settings import Settings


def certledger(home: Path, url: str, *args: str, check: bool = True) -> str:
    exe = shutil.which("certledger")
    assert exe is not None, "the certledger console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    proc = subprocess.run(
        [exe, "--home", str(home), "--database-url", url, *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


def spawn(home: Path, url: str, *args: str) -> subprocess.Popen[str]:
    exe = shutil.which("certledger")
    assert exe is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    return subprocess.Popen(
        [exe, "--home", str(home), "--database-url", url, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    op = json.loads(
        certledger(
            home,
            pg_url,
            "-o",
            "json",
            "cert",
            "create",
            "pg",
            "--issuer",
            "Self",
            "--subject",
            "CN=pg.example",
            "--kty",
            "EC",
            "--wait",
        )
    )
    assert op["status"] == "completed"
    bundle = json.loads(certledger(home, pg_url, "-o", "json", "cert", "show", "pg"))
    assert bundle["x5t"]
    status = json.loads(certledger(home, pg_url, "-o", "json", "projections", "status"))
    assert {row["lag"] for row in status["value"]} == {0}
    certledger(home, pg_url, "projections", "rebuild", "--jobs", "2")
    again = json.loads(certledger(home, pg_url, "-o", "json", "cert", "show", "pg"))
    assert again == bundle
    listed = json.loads(certledger(home, pg_url, "-o", "json", "cert", "list"))["value"]
    assert [item["id"].rsplit("/", 1)[1] for item in listed] == ["pg"]
    # Nothing was written to an SQLite file in the home.
    assert not (home / "ledger.db").exists()


def test_two_workers_and_two_followers_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    home = tmp_path / "home"
    certledger(home, pg_url, "projections", "status")  # create the schema once
    processes = [
        spawn(home, pg_url, "worker", "--interval", "0.05"),
        spawn(home, pg_url, "worker", "--interval", "0.05"),
        spawn(home, pg_url, "projections", "run", "--interval", "0.05"),
        spawn(home, pg_url, "projections", "run", "--interval", "0.05"),
    ]
    names = [f"svc-{i:02d}" for i in range(16)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda n: certledger(
                        home,
                        pg_url,
                        "cert",
                        "create",
                        n,
                        "--issuer",
                        "Self",
                        "--subject",
                        f"CN={n}",
                        "--kty",
                        "EC",
                    ),
                    names,
                )
            )
        settings = Settings.resolve(home=home, database_url=pg_url, environ={})
        ledger = open_ledger(settings)
        projector, queries = open_views(ledger)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(ledger.certificate(n).require_operation().status == "completed" for n in names):
                break
            time.sleep(0.2)
        for process in processes:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""

        head = projector.head()
        deadline = time.monotonic() + 30
        while min(projector.positions().values()) < head and time.monotonic() < deadline:
            time.sleep(0.05)
        assert min(projector.positions().values()) >= head  # the followers caught up

        notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
        topics = [n.topic.rpartition(".")[2] for n in notifications]
        assert topics.count("VersionPromoted") == len(names)
        assert topics.count("X509Merged") == len(names)
        for n in names:
            assert len(queries.versions(n)) == 1
            assert queries.operation(n)["status"] == "completed"
        rows_before = {
            t: sorted(projector.db.execute(f"SELECT * FROM {t}"), key=repr)
            for v in projector.views
            for t in v.tables
        }
        projector.rebuild()
        rows_after = {
            t: sorted(projector.db.execute(f"SELECT * FROM {t}"), key=repr)
            for v in projector.views
            for t in v.tables
        }
        assert rows_after == rows_before
        projector.db.close()
        ledger.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
