"""The audit log on a real PostgreSQL ledger: leaves, checkpoints, proofs, and tampering
(through psycopg, on the schema's `ledger_events`) detected at the right position."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.audit import verifier
from ledger.audit.postgres_store import PostgresAuditStore
from ledger.audit.service import AuditError
from ledger.audit.verifier import VerifyReport
from ledger.bootstrap import open_ledger
from ledger.cli import main
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict
from ledger.domain.ids import certificate_id
from ledger.recorder import LedgerPostgresRecorder
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory


@pytest.fixture
def backend() -> str:
    """These tests tamper with the PostgreSQL schema directly."""
    return "postgresql"


Reopen = Callable[[], Ledger]
Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def reopen(settings: Settings, clock: Clock) -> Iterator[Reopen]:
    """Open the same ledger again (after tampering with its tables); closed at the end."""
    opened: list[Ledger] = []

    def open_again() -> Ledger:
        ledger = open_ledger(settings, clock=clock)
        opened.append(ledger)
        return ledger

    yield open_again
    for ledger in opened:
        ledger.close()


@pytest.fixture
def sql(settings: Settings) -> Iterator[Sql]:
    """Run SQL in the ledger's schema with a plain psycopg connection, as an attacker would."""
    url = settings.database
    conn = psycopg.connect(url.conninfo(), autocommit=True)
    conn.execute(f'SET search_path TO "{url.schema}"')

    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []

    yield run
    conn.close()


def create(ledger: Ledger, worker: Worker, make_policy: PolicyFactory, *names: str) -> None:
    for name in names:
        ledger.create_certificate(Ctx("admin"), name, make_policy())
        worker.drive(name)


def position_of(sql: Sql, name: str, version: int) -> int:
    rows = sql(
        "SELECT position FROM audit_leaves WHERE stream = %s AND version = %s",
        str(certificate_id(name)),
        version,
    )
    assert rows
    return int(rows[0][0])


def id_of(sql: Sql, name: str, version: int) -> int:
    rows = sql(
        "SELECT notification_id FROM ledger_events"
        " WHERE originator_id = %s AND originator_version = %s",
        certificate_id(name),
        version,
    )
    assert rows
    return int(rows[0][0])


def failed(report: VerifyReport) -> tuple[int | None, str]:
    assert not report.ok
    first = report.first_bad
    assert first is not None
    return first.position, first.message


# -- the write path -------------------------------------------------------------------


def test_every_event_gets_a_dense_leaf_in_its_transaction(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, sql: Sql
) -> None:
    assert isinstance(ledger.recorder, LedgerPostgresRecorder)
    assert isinstance(ledger.audit.store, PostgresAuditStore)
    create(ledger, worker, make_policy, "alpha", "beta")
    events = sql(
        "SELECT originator_id, originator_version FROM ledger_events ORDER BY notification_id"
    )
    leaves = sql("SELECT position, stream, version FROM audit_leaves ORDER BY position")
    assert len(events) == len(leaves) > 10
    assert [leaf[0] for leaf in leaves] == list(range(len(leaves)))
    for (stored_id, version), (_, stream, leaf_version) in zip(events, leaves, strict=True):
        assert (str(stored_id), version) == (stream, leaf_version)
    labels = dict(sql("SELECT stream, label FROM audit_streams"))
    assert labels[str(certificate_id("beta"))] == "certificate 'beta'"
    types = dict(
        sql(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'audit_leaves'"
        )
    )
    assert types == {
        "position": "bigint",
        "stream": "text",
        "version": "bigint",
        "leaf_hash": "bytea",
    }

    # A save that fails (a concurrent change) leaves no leaf behind.
    first, second = ledger.certificate("alpha"), ledger.certificate("alpha")
    first.update_attributes(Ctx("admin"), None, enabled=None, tags={"a": "1"})
    ledger.commit(first)
    second.update_attributes(Ctx("admin"), None, enabled=None, tags={"a": "2"})
    with pytest.raises(Conflict):
        ledger.commit(second)
    counts = sql("SELECT (SELECT COUNT(*) FROM ledger_events), (SELECT COUNT(*) FROM audit_leaves)")
    assert counts[0][0] == counts[0][1]
    assert ledger.audit.verify().ok


def test_concurrent_writers_get_distinct_dense_positions(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, reopen: Reopen, sql: Sql
) -> None:
    create(ledger, worker, make_policy, "left", "right")
    other = reopen()
    errors: list[BaseException] = []

    def tag(app: Ledger, name: str) -> None:
        try:
            for i in range(25):
                app.update_certificate(Ctx("admin"), name, tags={"n": str(i)})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=tag, args=(ledger, "left")),
        threading.Thread(target=tag, args=(other, "right")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    positions = [r[0] for r in sql("SELECT position FROM audit_leaves ORDER BY position")]
    assert positions == list(range(sql("SELECT COUNT(*) FROM ledger_events")[0][0]))
    assert ledger.audit.verify().ok


def test_a_ledger_recorded_before_the_audit_log_is_backfilled(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, reopen: Reopen, sql: Sql
) -> None:
    create(ledger, worker, make_policy, "alpha")
    ledger.close()
    sql("DELETE FROM audit_leaves")
    sql("DELETE FROM audit_nodes")
    again = reopen()
    count = sql("SELECT COUNT(*) FROM audit_leaves")[0][0]
    assert count == sql("SELECT COUNT(*) FROM ledger_events")[0][0] > 0
    again.audit.checkpoint()
    assert again.audit.verify().ok


def test_events_are_read_in_recording_order_across_batches(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, sql: Sql
) -> None:
    create(ledger, worker, make_policy, "alpha", "beta")
    store = ledger.audit.store
    assert isinstance(store, PostgresAuditStore)
    stored = sql(
        "SELECT notification_id, originator_id, originator_version FROM ledger_events"
        " ORDER BY notification_id"
    )
    ids = [r[0] for r in stored]
    with store.snapshot():
        whole = [row for batch in store.iter_events() for row in batch]
        batched = [row for batch in store.iter_events(batch=7) for row in batch]
        middle = [row for batch in store.iter_events(ids[3], ids[9], batch=4) for row in batch]
        # A snapshot sees one state: an event saved meanwhile is not in it.
        ledger.update_certificate(Ctx("admin"), "alpha", tags={"during": "snapshot"})
        assert store.event_count() == len(ids)
    assert store.event_count() == len(ids) + 1
    assert batched == whole and middle == whole[3:10]
    assert [(row[0], row[1]) for row in whole] == [(str(s), v) for _, s, v in stored]


# -- tampering, each detected at the right position ------------------------------------------


@pytest.fixture
def history(ledger: Ledger, worker: Worker, make_policy: PolicyFactory, sql: Sql) -> Sql:
    """Three certificates, a checkpoint; the ledger is closed and the schema is open raw."""
    create(ledger, worker, make_policy, "alpha", "beta", "gamma")
    ledger.audit.checkpoint()
    ledger.close()
    return sql


def test_one_changed_byte_is_found(history: Sql, reopen: Reopen) -> None:
    at = position_of(history, "beta", 4)
    nid = id_of(history, "beta", 4)
    state = bytearray(
        history("SELECT state FROM ledger_events WHERE notification_id = %s", nid)[0][0]
    )
    state[len(state) // 2] ^= 0x01
    history("UPDATE ledger_events SET state = %s WHERE notification_id = %s", bytes(state), nid)
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert f"position {at}:" in message and "certificate 'beta'" in message


def test_a_deleted_event_is_found(history: Sql, reopen: Reopen) -> None:
    last_of_beta = history(
        "SELECT MAX(version) FROM audit_leaves WHERE stream = %s", str(certificate_id("beta"))
    )[0][0]
    at = position_of(history, "beta", last_of_beta)
    history(
        "DELETE FROM ledger_events WHERE notification_id = %s", id_of(history, "beta", last_of_beta)
    )
    position, message = failed(reopen().audit.verify())
    assert position == at
    # The lost event was beta's; gamma's first event moved up into its place.
    assert "certificate 'beta'" in message and "certificate 'gamma'" in message


def test_two_swapped_events_are_found(history: Sql, reopen: Reopen) -> None:
    a, b = id_of(history, "alpha", 2), id_of(history, "gamma", 2)
    at = position_of(history, "alpha", 2)
    cols = "originator_id, originator_version, topic, state"
    row_a = history(f"SELECT {cols} FROM ledger_events WHERE notification_id = %s", a)[0]
    row_b = history(f"SELECT {cols} FROM ledger_events WHERE notification_id = %s", b)[0]
    update = (
        "UPDATE ledger_events SET originator_id = %s, originator_version = %s, topic = %s,"
        " state = %s WHERE notification_id = %s"
    )
    history("BEGIN")
    history(update, uuid.uuid4(), 0, "", b"", a)
    history(update, *row_a, b)
    history(update, *row_b, a)
    history("COMMIT")
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert "certificate 'alpha'" in message and "certificate 'gamma'" in message


def test_a_tail_deleted_and_refilled_is_found(
    history: Sql, reopen: Reopen, make_policy: PolicyFactory
) -> None:
    at = position_of(history, "gamma", 1)
    history("DELETE FROM ledger_events WHERE notification_id >= %s", id_of(history, "gamma", 1))
    refill = reopen()
    create(refill, Worker(refill), make_policy, "delta", "epsilon")  # written by the real recorder
    position, message = failed(refill.audit.verify())
    assert position == at
    assert "certificate 'gamma'" in message and "certificate 'delta'" in message


def test_a_tail_rewritten_with_its_leaves_is_bounded_by_the_checkpoints(
    ledger: Ledger,
    worker: Worker,
    make_policy: PolicyFactory,
    sql: Sql,
    reopen: Reopen,
) -> None:
    create(ledger, worker, make_policy, "alpha")
    good = ledger.audit.checkpoint().size
    create(ledger, worker, make_policy, "beta")
    kept = ledger.audit.checkpoint()
    ledger.close()

    first_id = sql(
        "SELECT notification_id FROM ledger_events ORDER BY notification_id LIMIT 1 OFFSET %s",
        good,
    )[0][0]
    sql("DELETE FROM ledger_events WHERE notification_id >= %s", first_id)
    sql("DELETE FROM audit_leaves WHERE position >= %s", good)
    sql("DELETE FROM audit_nodes")
    refill = reopen()
    create(refill, Worker(refill), make_policy, "forged", "forged-too")
    position, message = failed(refill.audit.verify())
    assert position == good
    assert f"checkpoint of size {kept.size}" in message and "certificate 'forged'" in message

    sql("DELETE FROM audit_checkpoints WHERE tree_size > %s", good)
    assert refill.audit.verify().ok
    position, message = failed(refill.audit.verify(against=kept.note))
    assert position == good
    assert f"your checkpoint of size {kept.size}" in message


def test_a_truncated_log_is_found(history: Sql, reopen: Reopen) -> None:
    at = position_of(history, "gamma", 3)
    history("DELETE FROM ledger_events WHERE notification_id >= %s", id_of(history, "gamma", 3))
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert "certificate 'gamma'" in message


def test_a_damaged_log_refuses_to_sign(history: Sql, reopen: Reopen) -> None:
    history("DELETE FROM audit_leaves WHERE position = 3")
    history("DELETE FROM audit_nodes")
    ledger = reopen()
    ledger.update_certificate(Ctx("admin"), "alpha", tags={"after": "damage"})
    with pytest.raises(AuditError, match="run `certledger audit verify`"):
        ledger.audit.checkpoint()


# -- a larger log in several processes, at one snapshot ---------------------------------------


@pytest.fixture
def big(ledger: Ledger, worker: Worker, make_policy: PolicyFactory, sql: Sql) -> Sql:
    """About 700 events: real certificates, then copies of their histories under new ids."""
    create(ledger, worker, make_policy, "alpha", "beta")
    ledger.update_certificate(Ctx("admin"), "beta", tags={"t": "1"})
    templates = [list(ledger.recorder.select_events(certificate_id(n))) for n in ("alpha", "beta")]
    for i in range(80):
        sid = uuid.UUID(int=i + 1, version=4)
        ledger.recorder.insert_events(
            [StoredEvent(sid, e.originator_version, e.topic, e.state) for e in templates[i % 2]]
        )
        if i in (7, 30, 61):
            ledger.audit.checkpoint()  # sizes that are not multiples of the tile width
    ledger.audit.checkpoint()
    ledger.close()
    return sql


def both_ways(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None] = lambda: None
) -> list[VerifyReport]:
    """Verify in one process, then in three (chunks of 64 events); `meanwhile` runs once the
    chunks are planned, before the workers start."""
    monkeypatch.setattr(verifier, "CHUNK_EVENTS", 64)
    scanned: list[list[int]] = []
    real = verifier._scan_parallel

    def counting(*args: Any) -> list[verifier.ChunkResult]:
        meanwhile()
        results = real(*args)
        scanned.append([r.count for r in results])
        return results

    monkeypatch.setattr(verifier, "_scan_parallel", counting)
    reports = [ledger.audit.verify(jobs=1), ledger.audit.verify(jobs=3)]
    assert scanned and len(scanned[0]) > 3  # the second pass ran in worker processes
    # ...and was kept: the workers saw as many events as this process (no rerun here).
    assert sum(scanned[0]) == reports[1].events
    return reports


def test_a_large_log_verifies_in_several_processes_at_one_snapshot(
    big: Sql, reopen: Reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, writer = reopen(), reopen()
    saved: list[int] = []

    def save_during_the_scan() -> None:  # the workers must not see it
        writer.update_certificate(Ctx("admin"), "alpha", tags={"during": "verify"})
        saved.append(1)

    one, several = both_ways(ledger, monkeypatch, save_during_the_scan)
    assert saved and one.ok and several.ok, (one.problems, several.problems)
    assert one.events == several.events == big("SELECT COUNT(*) FROM ledger_events")[0][0] - 1
    assert one.root == several.root
    sizes = [r[0] for r in big("SELECT tree_size FROM audit_checkpoints ORDER BY tree_size")]
    assert [c.size for c in one.checked] == [c.size for c in several.checked] == sizes


def test_a_large_log_tampered_is_found_the_same_way_in_several_processes(
    big: Sql, reopen: Reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [r[0] for r in big("SELECT notification_id FROM ledger_events ORDER BY notification_id")]
    big("UPDATE ledger_events SET state = state || %s WHERE notification_id = %s", b"x", ids[300])
    big("DELETE FROM ledger_events WHERE notification_id = %s", ids[500])
    reports = both_ways(reopen(), monkeypatch)
    for report in reports:
        assert failed(report)[0] == 300
    assert reports[0].problems == reports[1].problems


# -- checkpoint, `audit prove`, the offline verifier ------------------------------------------


def test_a_proof_round_trip_through_the_cli_and_the_offline_verifier(
    ledger: Ledger,
    worker: Worker,
    make_policy: PolicyFactory,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create(ledger, worker, make_policy, "web", "api")
    ledger.close()
    monkeypatch.delenv("CERTLEDGER_HOME", raising=False)
    monkeypatch.delenv("CERTLEDGER_PRINCIPAL", raising=False)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(
            main,
            ["--home", str(settings.home), "--database-url", settings.database.url, *args],
        )
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    kept = tmp_path / "kept.note"
    cli("audit", "checkpoint", "--out", str(kept))
    cli("cert", "update", "web", "--tag", "team=payments")  # the log grows past the kept one
    bundle, vkey = tmp_path / "web.json", tmp_path / "log.vkey"
    cli("audit", "prove", "web", "--since", str(kept), "--out", str(bundle))
    vkey.write_text(cli("audit", "public-key"))
    data = json.loads(bundle.read_text())
    assert data["certificate"] == "web" and data["consistency"]["proof"]

    def offline(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledger.audit.verify_bundle", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    result = offline(bundle, "--key", vkey, "--checkpoint", kept)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VERIFIED")
    assert "certificate 'web'" in result.stdout and "AttributesUpdated" in result.stdout

    data["events"][0]["state"] = data["events"][1]["state"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    refused = offline(bad, "--key", vkey)
    assert refused.returncode != 0

    report = cli("audit", "verify")
    assert report.startswith("verified ") and "2 checkpoint(s) match" in report
