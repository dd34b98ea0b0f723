"""Worker settings, provider lists and leases."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.database import DatabaseUrl
from ledger.leases import Leases
from ledger.settings import Settings, WorkerSettings, parse_provider_list


def test_worker_settings_from_the_environment() -> None:
    settings = Settings.resolve(
        home="/tmp/x",
        environ={
            "CERTLEDGER_WORKER_MAX_ATTEMPTS": "7",
            "CERTLEDGER_WORKER_BACKOFF": "0.5",
            "CERTLEDGER_WORKER_MAX_BACKOFF": "3",
            "CERTLEDGER_WORKER_PAUSE_AT": "order",
        },
    )
    worker = settings.worker
    assert (worker.max_attempts, worker.backoff, worker.pause_at) == (7, 0.5, "order")
    assert [worker.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert Settings.resolve(home="/tmp/x", environ={}).worker == WorkerSettings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CERTLEDGER_WORKER_BACKOFF": "soon"}, "CERTLEDGER_WORKER_BACKOFF='soon' is not a number"),
        ({"CERTLEDGER_WORKER_MAX_ATTEMPTS": "0"}, "max attempts must be at least 1"),
        ({"CERTLEDGER_WORKER_PAUSE_AT": "lunch"}, "unknown pause step 'lunch'"),
        ({"CERTLEDGER_PROVIDERS": "Broken"}, "'Broken' is not Name=module:attribute"),
    ],
)
def test_bad_worker_settings_name_what_is_wrong(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.resolve(home="/tmp/x", environ=environ)


def test_provider_lists() -> None:
    assert parse_provider_list(" A=pkg.mod:Cls ; B=other:make ") == {
        "A": "pkg.mod:Cls",
        "B": "other:make",
    }
    assert parse_provider_list("") == {}


def test_a_lease_excludes_others_until_it_lapses_or_is_released(tmp_path: Path) -> None:
    url = DatabaseUrl.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    first, second = Leases(url.connect(), ttl=0.2), Leases(url.connect(), ttl=0.2)
    try:
        assert first.acquire("op-1")
        assert first.acquire("op-1")  # renewal
        assert not second.acquire("op-1")
        assert second.acquire("op-2")
        time.sleep(0.25)
        assert second.acquire("op-1")  # lapsed
        assert not first.acquire("op-1")
        second.release("op-1")
        assert first.acquire("op-1")
    finally:
        first.close()
        second.close()


def test_a_lease_of_a_dead_process_is_taken_at_once(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    code = (
        "import sys; from ledger.database import DatabaseUrl; from ledger.leases import Leases; "
        "assert Leases(DatabaseUrl.parse(sys.argv[1]).connect(), ttl=3600).acquire('op')"
    )
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}"], check=True)
    alive = Leases(DatabaseUrl.parse(f"sqlite:///{db}").connect(), ttl=3600)
    try:
        assert alive.acquire("op")  # its holder's process has exited
    finally:
        alive.close()
