"""Writers of one SQLite file in one process queue on its write gate, not in SQLite's
busy handler; readers never wait for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ledger.bootstrap import open_ledger
from ledger.database import DatabaseUrl, Db, write_gate
from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.settings import Settings


def finishes(fn: Callable[[], object], within: float) -> tuple[bool, threading.Thread]:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(within)
    return not thread.is_alive(), thread


def test_connections_to_one_file_share_its_gate(tmp_path: Path) -> None:
    first = Db(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'a.db'}"))
    second = Db(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'a.db'}"))
    other = Db(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'b.db'}"))
    gate = write_gate(tmp_path / "a.db")
    assert first._gate is second._gate is gate
    assert other._gate is not gate
    for db in (first, second, other):
        db.close()


def test_a_write_waits_for_the_gate_and_a_read_does_not(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = Db(DatabaseUrl.parse(f"sqlite:///{path}"))
    other = Db(DatabaseUrl.parse(f"sqlite:///{path}"))
    writer.execute("CREATE TABLE t (x INTEGER)")
    gate = write_gate(path)
    with gate:
        done, _ = finishes(lambda: other.execute("SELECT COUNT(*) FROM t"), 5)
        assert done
        done, insert = finishes(lambda: other.execute("INSERT INTO t VALUES (1)"), 0.3)
        assert not done
        done, txn = finishes(lambda: _in_transaction(other), 0.3)
        assert not done
    insert.join(5)
    txn.join(5)
    assert other.execute("SELECT COUNT(*) FROM t") == [(2,)]
    writer.close()
    other.close()


def _in_transaction(db: Db) -> None:
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (2)")


def test_a_transaction_holds_the_gate_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    db = Db(DatabaseUrl.parse(f"sqlite:///{path}"))
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(5)
    gate = write_gate(path)
    assert not gate.acquire(blocking=False)
    leave.set()
    thread.join(5)
    assert gate.acquire(blocking=False)
    gate.release()
    db.close()


def test_the_ledger_saves_events_through_the_gate(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", database_url=None, environ={})
    ledger = open_ledger(settings)
    try:
        assert settings.database.path is not None
        gate = write_gate(settings.database.path)
        cert = Certificate.register(Ctx("admin"), "gated")
        with gate:
            done, save = finishes(lambda: ledger.save(cert), 0.3)
            assert not done
        save.join(5)
        assert ledger.find_certificate("gated") is not None
    finally:
        ledger.close()
