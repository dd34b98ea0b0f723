"""Real processes killed with SIGKILL right after each step is saved, then restarted.

The pause point (CERTLEDGER_WORKER_PAUSE_AT) makes the process announce the saved step and
wait; the test kills it there, starts the worker again and checks the ledger: one completed
version, one order at the CA, the events in order, one private key.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.providers.acme.session import AcmeSession
from ledger.settings import Settings
from tests.integration.conftest import build_policy
from tests.support.countingca import journal_lines
from tests.support.pebble import Pebble

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = "Counting=tests.support.countingca:CountingProvider"
CREATION = [
    "Registered",
    "PolicyReplaced",
    "OperationOpened",
    "KeyPairCreated",
    "CsrIssued",
    "IssuerOrderPlaced",
    "X509Merged",
    "VersionPromoted",
]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["CERTLEDGER_PROVIDERS"] = PROVIDERS
    env["CERTLEDGER_WORKER_BACKOFF"] = "0.05"
    env.update(extra)
    return env


def exe() -> str:
    """The console script installed with this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "certledger"
    path = str(beside) if beside.exists() else shutil.which("certledger")
    assert path is not None, "the certledger console script is not installed"
    return path


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [exe(), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=base_env(**env),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def run_until_paused(home: Path, step: str, *args: str, timeout: float = 60) -> None:
    """Start `certledger ARGS` paused after `step`, wait for the pause, SIGKILL it."""
    proc = subprocess.Popen(
        [exe(), "--home", str(home), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=base_env(CERTLEDGER_WORKER_PAUSE_AT=step),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    try:
        while f"paused after {step}".encode() not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no pause after {step}: {seen.decode(errors='replace')}"
            ready, _, _ = select.select([proc.stderr], [], [], remaining)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                assert chunk or proc.poll() is None, f"exited: {seen.decode(errors='replace')}"
                seen += chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def open_here(home: Path) -> Ledger:
    return open_ledger(Settings.resolve(home=home, environ={"CERTLEDGER_PROVIDERS": PROVIDERS}))


@pytest.fixture
def journal(tmp_path: Path, home: Path) -> Iterator[Path]:
    path = tmp_path / "journal.txt"
    ledger = open_here(home)
    try:
        ledger.set_issuer(
            Ctx("admin"),
            "counting",
            provider="Counting",
            provider_params={"journal": str(path)},
        )
    finally:
        ledger.close()
    yield path


def creation_events(home: Path, name: str) -> list[Any]:
    ledger = open_here(home)
    try:
        cert = ledger.certificate(name)
        return [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(cert.id)]
    finally:
        ledger.close()


def private_keys(home: Path, owner: str) -> int:
    with sqlite3.connect(home / "ledger.db") as db:
        row = db.execute(
            "SELECT count(*) FROM custody_blobs WHERE owner = ? AND kind = 'private_key'", (owner,)
        ).fetchone()
    return int(row[0])


def check_completed_once(home: Path, name: str) -> None:
    ledger = open_here(home)
    try:
        cert = ledger.certificate(name)
        op = cert.require_operation()
        assert op.status == "completed", op.status_details
        assert cert.current == op.version
        assert len(cert.completed_versions()) == 1
        events = [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(cert.id)]
        assert [type(e).__name__ for e in events] == CREATION
        assert {e.request_id for e in events[2:]} == {op.request_id}
    finally:
        ledger.close()
    assert private_keys(home, f"cert:{name}:1") == 1


CREATE = ["cert", "create", "svc", "--issuer", "counting"]
CREATE += ["--subject", "CN=svc.example", "--san", "svc.example"]


@pytest.mark.parametrize("step", ["key_pair", "csr"])
def test_create_killed_between_its_steps_is_finished_by_the_worker(
    home: Path, journal: Path, step: str
) -> None:
    run_until_paused(home, step, *CREATE)
    events = [type(e).__name__ for e in creation_events(home, "svc")]
    assert events[-1] == {"key_pair": "KeyPairCreated", "csr": "CsrIssued"}[step]

    out = run(home, "worker", "--once").stderr
    # The CSR (after key_pair), then the order, certificate and promotion in one commit.
    assert f"advanced {2 if step == 'key_pair' else 1} step(s)" in out

    check_completed_once(home, "svc")
    assert len(journal_lines(journal, "order")) == 1


@pytest.mark.parametrize("step", ["order", "certificate"])
def test_worker_killed_after_a_step_is_finished_by_a_restarted_worker(
    home: Path, journal: Path, step: str
) -> None:
    run(home, *CREATE)
    run_until_paused(home, step, "worker", "--interval", "0.05")
    events = [type(e).__name__ for e in creation_events(home, "svc")]
    assert events[-1] == {"order": "IssuerOrderPlaced", "certificate": "X509Merged"}[step]

    run(home, "worker", "--once")

    check_completed_once(home, "svc")
    assert len(journal_lines(journal, "order")) == 1


def test_acme_worker_killed_after_the_order_does_not_order_twice(
    home: Path, pebble: Pebble
) -> None:
    ledger = open_here(home)
    try:
        ledger.set_issuer(
            Ctx("admin"),
            "pebble",
            provider="acme",
            provider_params={
                "directory_url": pebble.directory_url,
                "http_port": pebble.http_port,
                "ca_bundle": str(pebble.tls_ca_file),
            },
        )
        ledger.create_certificate(
            Ctx("admin"),
            "web",
            build_policy(issuer="pebble", subject="CN=localhost", dns_names=("localhost",)),
        )
    finally:
        ledger.close()

    run_until_paused(home, "order", "worker", "--interval", "0.05")
    run(home, "worker", "--once")

    check_completed_once(home, "web")
    ledger = open_here(home)
    try:
        state = ledger.issuer(Ctx("admin"), "pebble").provider_state
        session = AcmeSession(
            pebble.directory_url,
            ledger.custody.signer(state["account_key_id"]),
            verify=str(pebble.tls_ca_file),
            account_url=state["account_url"],
        )
        orders = session.account_orders()
        assert orders == [ledger.certificate("web").version_of(None).order_ref]
    finally:
        ledger.close()


def test_two_worker_processes_complete_each_operation_once(
    home: Path, journal: Path, tmp_path: Path
) -> None:
    names = [f"svc-{i}" for i in range(6)]
    ledger = open_here(home)
    try:
        for name in names:
            ledger.create_certificate(Ctx("admin"), name, build_policy(issuer="counting"))
    finally:
        ledger.close()
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [exe(), "--home", str(home), "worker", "--interval", "0.02"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env=base_env(),
        )
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 90
        while True:
            ledger = open_here(home)
            try:
                done = [ledger.certificate(n).require_operation().status for n in names]
            finally:
                ledger.close()
            started = all(b"worker running" in log.read_bytes() for log in logs)
            if started and all(s == "completed" for s in done):
                break
            assert time.monotonic() < deadline, done
            time.sleep(0.2)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)
    for proc, log in zip(workers, logs, strict=True):
        assert proc.returncode == 0, log.read_text()

    for name in names:
        check_completed_once(home, name)
    orders = journal_lines(journal, "order")
    assert len(orders) == len(set(orders)) == len(names)
