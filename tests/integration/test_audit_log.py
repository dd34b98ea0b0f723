"""The audit log on a real SQLite ledger: leaves, checkpoints, and tampering detected."""

from __future__ import annotations

import base64
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.audit import verifier
from ledger.audit.note import VerifierKey, open_checkpoint
from ledger.audit.service import LOG_KEY_OWNER, AuditError
from ledger.audit.tree import TILE_WIDTH
from ledger.audit.verifier import VerifyReport
from ledger.bootstrap import open_ledger
from ledger.domain.audit_log import AUDIT_LOG_ID, AuditLog
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict
from ledger.domain.ids import certificate_id
from ledger.keys.custody import CustodyError
from ledger.recorder import LedgerSQLiteRecorder, StatementCachingPool
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory


@pytest.fixture
def backend() -> str:
    """These tests tamper with the SQLite file (test_audit_log_postgres.py: PostgreSQL)."""
    return "sqlite"


Reopen = Callable[[], Ledger]


@pytest.fixture
def reopen(settings: Settings, clock: Clock) -> Iterator[Reopen]:
    """Open the same ledger again (after tampering with its file); closed at the end."""
    opened: list[Ledger] = []

    def open_again() -> Ledger:
        ledger = open_ledger(settings, clock=clock)
        opened.append(ledger)
        return ledger

    yield open_again
    for ledger in opened:
        ledger.close()


def raw(settings: Settings) -> sqlite3.Connection:
    """A plain sqlite3 connection to the ledger file, as an attacker would use."""
    return sqlite3.connect(settings.database.path, isolation_level=None)


def create(ledger: Ledger, worker: Worker, make_policy: PolicyFactory, *names: str) -> None:
    for name in names:
        ledger.create_certificate(Ctx("admin"), name, make_policy())
        worker.drive(name)


def position_of(db: sqlite3.Connection, name: str, version: int) -> int:
    row = db.execute(
        "SELECT position FROM audit_leaves WHERE stream = ? AND version = ?",
        (str(certificate_id(name)), version),
    ).fetchone()
    assert row is not None
    return int(row[0])


def rowid_of(db: sqlite3.Connection, name: str, version: int) -> int:
    row = db.execute(
        "SELECT rowid FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        (certificate_id(name).hex, version),
    ).fetchone()
    assert row is not None
    return int(row[0])


def failed(report: VerifyReport) -> tuple[int | None, str]:
    assert not report.ok
    first = report.first_bad
    assert first is not None
    return first.position, first.message


# -- the write path -------------------------------------------------------------------


def test_every_event_gets_a_dense_leaf_in_its_transaction(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings
) -> None:
    create(ledger, worker, make_policy, "alpha", "beta")
    db = raw(settings)
    events = db.execute(
        "SELECT originator_id, originator_version FROM stored_events ORDER BY rowid"
    )
    leaves = db.execute("SELECT position, stream, version FROM audit_leaves ORDER BY position")
    pairs = list(zip(events.fetchall(), leaves.fetchall(), strict=True))
    assert [leaf[0] for _, leaf in pairs] == list(range(len(pairs)))
    for (stored_id, version), (_, stream, leaf_version) in pairs:
        assert stream.replace("-", "") == stored_id and version == leaf_version

    # A save that fails (a concurrent change) leaves no leaf behind.
    first, second = ledger.certificate("alpha"), ledger.certificate("alpha")
    first.update_attributes(Ctx("admin"), None, enabled=None, tags={"a": "1"})
    ledger.commit(first)
    second.update_attributes(Ctx("admin"), None, enabled=None, tags={"a": "2"})
    with pytest.raises(Conflict):
        ledger.commit(second)
    counts = db.execute(
        "SELECT (SELECT COUNT(*) FROM stored_events), (SELECT COUNT(*) FROM audit_leaves)"
    ).fetchone()
    assert counts[0] == counts[1]
    assert ledger.audit.verify().ok


def test_connections_cache_statements_and_use_wal(ledger: Ledger, settings: Settings) -> None:
    assert isinstance(ledger.recorder, LedgerSQLiteRecorder)
    assert isinstance(ledger.recorder.datastore.pool, StatementCachingPool)
    assert raw(settings).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_positions_stay_dense_across_rowid_gaps(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings
) -> None:
    create(ledger, worker, make_policy, "alpha")
    db = raw(settings)
    db.execute(
        "UPDATE stored_events SET rowid = rowid + 1000"
        " WHERE rowid = (SELECT MAX(rowid) FROM stored_events)"
    )
    create(ledger, worker, make_policy, "beta")
    rowids = [r[0] for r in db.execute("SELECT rowid FROM stored_events ORDER BY rowid")]
    assert rowids[-1] - rowids[0] > len(rowids) + 900  # a gap of a thousand rowids
    positions = [r[0] for r in db.execute("SELECT position FROM audit_leaves ORDER BY position")]
    assert positions == list(range(len(rowids)))
    assert ledger.audit.verify().ok


def test_concurrent_writers_get_distinct_dense_positions(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, reopen: Reopen, settings: Settings
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
    db = raw(settings)
    positions = [r[0] for r in db.execute("SELECT position FROM audit_leaves ORDER BY position")]
    assert positions == list(range(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]))
    assert ledger.audit.verify().ok


def test_a_ledger_recorded_before_the_audit_log_is_backfilled(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, reopen: Reopen, settings: Settings
) -> None:
    create(ledger, worker, make_policy, "alpha")
    ledger.close()
    db = raw(settings)
    db.execute("DELETE FROM audit_leaves")
    db.execute("DELETE FROM audit_nodes")
    again = reopen()
    count = db.execute("SELECT COUNT(*) FROM audit_leaves").fetchone()[0]
    assert count == db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    again.audit.checkpoint()
    assert again.audit.verify().ok


# -- the log key and checkpoints ----------------------------------------------------------


def test_the_log_key_is_born_in_custody_with_its_event(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings
) -> None:
    create(ledger, worker, make_policy, "alpha")
    assert ledger._load(AUDIT_LOG_ID, AuditLog) is None
    row = ledger.audit.checkpoint()
    log = ledger._load(AUDIT_LOG_ID, AuditLog)
    assert log is not None
    db = raw(settings)
    owners = [
        r[0] for r in db.execute("SELECT owner FROM custody_blobs WHERE ref = ?", (log.key_id,))
    ]
    assert owners == [LOG_KEY_OWNER]
    # The LogKeyCreated event is a leaf of the tree its key signs.
    stream_rows = db.execute(
        "SELECT version FROM audit_leaves WHERE stream = ?", (str(AUDIT_LOG_ID),)
    ).fetchall()
    assert stream_rows == [(1,)]

    key = VerifierKey.parse(ledger.audit.verifier_key().encode())
    checkpoint = open_checkpoint(row.note, [key])
    assert checkpoint.origin == log.origin == key.name
    assert checkpoint.size == ledger.audit.store.size()
    assert checkpoint.root == ledger.audit.tree().root()
    signer = ledger.custody.signer(log.key_id)
    assert isinstance(signer, Ed25519PrivateKey)
    assert base64.b64decode(log.public_key) == key.public_key

    # The private key is nowhere on disk in the clear.
    seed = signer.private_bytes_raw()
    der = signer.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    needles = [seed, der, seed.hex().encode(), base64.b64encode(seed), base64.b64encode(der)]
    for path in settings.home.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert not [n for n in needles if n in blob], path


def test_no_new_checkpoint_without_new_events(ledger: Ledger) -> None:
    first = ledger.audit.checkpoint()
    assert ledger.audit.checkpoint() == first
    assert ledger.audit.checkpoint_if_grown() is None
    ledger.grant(Ctx("admin"), "bob", ["get"])
    grown = ledger.audit.checkpoint_if_grown()
    assert grown is not None and grown.size == first.size + 1


def test_deletion_purge_and_recovery_return_after_a_checkpoint(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory
) -> None:
    create(ledger, worker, make_policy, "alpha")
    store = ledger.audit.store
    for step in (ledger.delete_certificate, ledger.recover_certificate, ledger.delete_certificate):
        step(Ctx("admin"), "alpha")
        latest = ledger.audit.latest_checkpoint()
        assert latest is not None and latest.size == store.size()
    ledger.purge_certificate(Ctx("admin"), "alpha")
    latest = ledger.audit.latest_checkpoint()
    assert latest is not None and latest.size == store.size()
    assert len(store.checkpoints()) == 4


def test_purge_keeps_the_log_verifiable(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings, tmp_path: Path
) -> None:
    create(ledger, worker, make_policy, "doomed", "kept")
    ledger.delete_certificate(Ctx("admin"), "doomed")
    ledger.purge_certificate(Ctx("admin"), "doomed")
    db = raw(settings)
    assert (
        db.execute(
            "SELECT COUNT(*) FROM custody_data_keys WHERE owner LIKE 'cert:doomed:%'"
        ).fetchone()[0]
        == 0
    )
    report = ledger.audit.verify()
    assert report.ok, report.problems
    assert report.events == ledger.audit.store.size()
    bundle = ledger.audit.certificate_evidence("doomed")
    from ledger.audit.verify_bundle import verify

    _, lines = verify(bundle, ledger.audit.verifier_key())
    assert any("Purged" in line for line in lines)


def test_the_log_refuses_to_sign_a_view_inconsistent_with_its_checkpoint(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings, reopen: Reopen
) -> None:
    create(ledger, worker, make_policy, "alpha", "beta")
    ledger.audit.checkpoint()
    ledger.close()
    db = raw(settings)
    # The cached tree (derived data) no longer matches what the log signed.
    assert db.execute("UPDATE audit_nodes SET hash = zeroblob(32) WHERE idx = 0").rowcount
    again = reopen()
    create(again, Worker(again), make_policy, "gamma")
    with pytest.raises(AuditError, match="not consistent with its checkpoint"):
        again.audit.checkpoint()


# -- tampering, each detected at the right position ------------------------------------------


@pytest.fixture
def history(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings
) -> sqlite3.Connection:
    """Three certificates, a checkpoint; the ledger is closed and the file is open raw."""
    create(ledger, worker, make_policy, "alpha", "beta", "gamma")
    ledger.audit.checkpoint()
    ledger.close()
    return raw(settings)


def test_one_changed_byte_is_found(history: sqlite3.Connection, reopen: Reopen) -> None:
    at = position_of(history, "beta", 4)
    rowid = rowid_of(history, "beta", 4)
    state = bytearray(
        history.execute("SELECT state FROM stored_events WHERE rowid = ?", (rowid,)).fetchone()[0]
    )
    state[len(state) // 2] ^= 0x01
    history.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (bytes(state), rowid))
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert f"position {at}:" in message and "certificate 'beta'" in message


@pytest.mark.parametrize(
    "change",
    [
        "state = CAST(state AS TEXT)",  # the same bytes as another type
        "topic = CAST(topic AS BLOB)",
        "topic = CAST(CAST(topic AS BLOB) || X'FF' AS TEXT)",  # text that is not UTF-8
        "topic = 7",
        "originator_version = 4.5",
    ],
)
def test_a_column_given_another_type_is_found(
    history: sqlite3.Connection, reopen: Reopen, change: str
) -> None:
    at = position_of(history, "beta", 4)
    history.execute(
        f"UPDATE stored_events SET {change} WHERE rowid = ?", (rowid_of(history, "beta", 4),)
    )
    report = reopen().audit.verify()
    if change.endswith(("AS TEXT)", "AS BLOB)")) and "X'" not in change:
        assert report.ok  # a leaf commits to the bytes, whatever type holds them
        return
    position, message = failed(report)
    assert position == at
    assert "certificate 'beta'" in message


def test_a_deleted_event_is_found(history: sqlite3.Connection, reopen: Reopen) -> None:
    last_of_beta = history.execute(
        "SELECT MAX(version) FROM audit_leaves WHERE stream = ?", (str(certificate_id("beta")),)
    ).fetchone()[0]
    at = position_of(history, "beta", last_of_beta)
    history.execute(
        "DELETE FROM stored_events WHERE rowid = ?", (rowid_of(history, "beta", last_of_beta),)
    )
    position, message = failed(reopen().audit.verify())
    assert position == at
    # The lost event was beta's; gamma's first event moved up into its place.
    assert "certificate 'beta'" in message and "certificate 'gamma'" in message


def test_two_swapped_events_are_found(history: sqlite3.Connection, reopen: Reopen) -> None:
    a, b = rowid_of(history, "alpha", 2), rowid_of(history, "gamma", 2)
    at = position_of(history, "alpha", 2)
    cols = "originator_id, originator_version, topic, state"
    row_a = history.execute(f"SELECT {cols} FROM stored_events WHERE rowid = ?", (a,)).fetchone()
    row_b = history.execute(f"SELECT {cols} FROM stored_events WHERE rowid = ?", (b,)).fetchone()
    update = (
        "UPDATE stored_events SET originator_id = ?, originator_version = ?, topic = ?,"
        " state = ? WHERE rowid = ?"
    )
    history.execute("BEGIN")
    history.execute(update, ("swap", 0, "", b"", a))
    history.execute(update, (*row_a, b))
    history.execute(update, (*row_b, a))
    history.execute("COMMIT")
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert "certificate 'alpha'" in message and "certificate 'gamma'" in message


def test_a_tail_deleted_and_refilled_is_found(
    history: sqlite3.Connection, reopen: Reopen, make_policy: PolicyFactory
) -> None:
    at = position_of(history, "gamma", 1)
    history.execute("DELETE FROM stored_events WHERE rowid >= ?", (rowid_of(history, "gamma", 1),))
    refill = reopen()
    create(refill, Worker(refill), make_policy, "delta", "epsilon")  # written by the real recorder
    position, message = failed(refill.audit.verify())
    assert position == at
    assert "certificate 'gamma'" in message and "certificate 'delta'" in message


def test_a_tail_rewritten_with_its_leaves_is_bounded_by_the_checkpoints(
    ledger: Ledger,
    worker: Worker,
    make_policy: PolicyFactory,
    settings: Settings,
    reopen: Reopen,
    tmp_path: Path,
) -> None:
    create(ledger, worker, make_policy, "alpha")
    good = ledger.audit.checkpoint().size
    create(ledger, worker, make_policy, "beta")
    kept = ledger.audit.checkpoint()
    ledger.close()

    db = raw(settings)
    first_rowid = db.execute(
        "SELECT rowid FROM stored_events ORDER BY rowid LIMIT 1 OFFSET ?", (good,)
    ).fetchone()[0]
    db.execute("DELETE FROM stored_events WHERE rowid >= ?", (first_rowid,))
    db.execute("DELETE FROM audit_leaves WHERE position >= ?", (good,))
    db.execute("DELETE FROM audit_nodes")
    refill = reopen()
    create(refill, Worker(refill), make_policy, "forged", "forged-too")
    position, message = failed(refill.audit.verify())
    assert position == good
    assert f"checkpoint of size {kept.size}" in message and "certificate 'forged'" in message

    # Remove the stored checkpoint too: only the one the auditor kept still tells.
    db.execute("DELETE FROM audit_checkpoints WHERE tree_size > ?", (good,))
    assert refill.audit.verify().ok  # the ledger's own records no longer show it...
    position, message = failed(refill.audit.verify(against=kept.note))
    assert position == good  # ...the auditor's checkpoint does
    assert f"your checkpoint of size {kept.size}" in message


def test_a_truncated_log_is_found(history: sqlite3.Connection, reopen: Reopen) -> None:
    at = position_of(history, "gamma", 3)
    history.execute("DELETE FROM stored_events WHERE rowid >= ?", (rowid_of(history, "gamma", 3),))
    position, message = failed(reopen().audit.verify())
    assert position == at
    assert "certificate 'gamma'" in message


def test_a_forged_checkpoint_is_refused(history: sqlite3.Connection, reopen: Reopen) -> None:
    note = history.execute("SELECT note FROM audit_checkpoints").fetchone()[0]
    origin, size, root = note.split("\n")[:3]
    forged = note.replace(
        f"{origin}\n{size}\n{root}", f"{origin}\n{size}\n{base64.b64encode(bytes(32)).decode()}"
    )
    history.execute("UPDATE audit_checkpoints SET note = ?", (forged,))
    report = reopen().audit.verify()
    assert not report.ok
    assert any("does not verify" in p.message for p in report.problems)


# -- a larger log: cached tiles, several processes -------------------------------------------


@pytest.fixture
def big(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, settings: Settings
) -> sqlite3.Connection:
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
    return raw(settings)


def both_ways(reopen: Reopen, monkeypatch: pytest.MonkeyPatch) -> list[VerifyReport]:
    """Verify in one process, then in three (chunks of 64 events): the reports must agree."""
    monkeypatch.setattr(verifier, "CHUNK_EVENTS", 64)
    scanned: list[int] = []
    real = verifier._scan_parallel

    def counting(*args: Any) -> list[verifier.ChunkResult]:
        results = real(*args)
        scanned.append(len(results))
        return results

    monkeypatch.setattr(verifier, "_scan_parallel", counting)
    ledger = reopen()
    reports = [ledger.audit.verify(jobs=1), ledger.audit.verify(jobs=3)]
    assert scanned and scanned[0] > 3  # the second pass ran in worker processes
    return reports


def test_a_large_log_verifies_in_one_or_several_processes(
    big: sqlite3.Connection, reopen: Reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = [r[0] for r in big.execute("SELECT tree_size FROM audit_checkpoints")]
    assert len(sizes) >= 4 and any(s % TILE_WIDTH for s in sizes)
    one, several = both_ways(reopen, monkeypatch)
    assert one.ok and several.ok, (one.problems, several.problems)
    assert one.root == several.root and one.events == several.events > 600
    assert [c.size for c in one.checked] == [c.size for c in several.checked] == sorted(sizes)


def test_a_large_log_tampered_is_found_the_same_way(
    big: sqlite3.Connection, reopen: Reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    rowid, position = 300, None
    position = big.execute(
        "SELECT COUNT(*) FROM stored_events WHERE rowid < ?", (rowid,)
    ).fetchone()[0]
    big.execute("UPDATE stored_events SET state = state || 'x' WHERE rowid = ?", (rowid,))
    big.execute("DELETE FROM stored_events WHERE rowid = 500")
    reports = both_ways(reopen, monkeypatch)
    for report in reports:
        assert failed(report)[0] == position
    assert reports[0].problems == reports[1].problems


def test_a_missing_node_cache_is_recomputed(
    big: sqlite3.Connection, reopen: Reopen, monkeypatch: pytest.MonkeyPatch
) -> None:
    big.execute("DELETE FROM audit_nodes")
    ledger = reopen()
    assert ledger.audit.verify().ok
    bundle = ledger.audit.certificate_evidence("beta")
    assert [e["version"] for e in bundle["events"]] == list(range(1, 9))


def test_damaged_leaf_rows_are_found_leaf_by_leaf(big: sqlite3.Connection, reopen: Reopen) -> None:
    at = position_of(big, "beta", 2)
    big.execute("UPDATE audit_leaves SET leaf_hash = zeroblob(32) WHERE position = ?", (at,))
    ledger = reopen()
    # The events still give every signed root...
    assert ledger.audit.verify().ok
    # ...but the leaf rows were damaged; a leaf-by-leaf pass names the row,
    position, message = failed(ledger.audit.verify(every_leaf=True))
    assert position == at and "certificate 'beta'" in message
    # and the log will not hand out proofs built from it.
    with pytest.raises(AuditError, match="does not verify"):
        ledger.audit.certificate_evidence("beta")


def test_the_log_key_signs_again_after_a_restart(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, reopen: Reopen
) -> None:
    first = ledger.audit.checkpoint()
    key = ledger.audit.verifier_key()
    ledger.close()
    again = reopen()  # the key now comes from its encrypted custody row
    create(again, Worker(again), make_policy, "alpha")
    second = again.audit.checkpoint()
    assert second.size > first.size
    assert again.audit.verifier_key() == key
    assert open_checkpoint(second.note, [key]).root == again.audit.tree(second.size).root()


def test_custody_keeps_only_ed25519_okp_keys(ledger: Ledger) -> None:
    handle = ledger.custody.generate("audit:test", "OKP", None, "Ed25519")
    assert (handle.kty, handle.key_size, handle.crv) == ("OKP", None, "Ed25519")
    assert isinstance(ledger.custody.signer(handle.key_id), Ed25519PrivateKey)
    for crv, size in (("Ed448", None), ("X25519", None), ("Ed25519", 256)):
        with pytest.raises(CustodyError, match="OKP"):
            ledger.custody.generate("audit:test", "OKP", size, crv)
