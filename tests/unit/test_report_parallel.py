"""The report's second process: its result comes back whole and leaves no file behind."""

from __future__ import annotations

import glob
import tempfile
import time
from pathlib import Path

import pytest

from ledger.reports import parallel


def lines(count: int) -> list[tuple[tuple[str, str], str]]:
    return [((f"n{i}", f"N{i}"), "x" * 1000 + str(i)) for i in range(count)]


def leftovers() -> list[str]:
    return glob.glob(str(Path(tempfile.gettempdir()) / "certledger-report-*"))


@pytest.mark.skipif(not parallel.available(), reason="needs Linux and two CPUs")
def test_result_comes_back_through_a_file() -> None:
    before = leftovers()
    with parallel.Worker() as worker:
        pending = worker.submit(lines, 20_000)
        assert pending.get() == lines(20_000)
    assert leftovers() == before


@pytest.mark.skipif(not parallel.available(), reason="needs Linux and two CPUs")
def test_an_unread_result_is_removed_when_this_process_fails() -> None:
    before = leftovers()
    with pytest.raises(RuntimeError), parallel.Worker() as worker:
        pending = worker.submit(lines, 10)
        while not pending._pending.ready():
            time.sleep(0.01)
        assert len(leftovers()) == len(before) + 1
        raise RuntimeError("this half failed")
    assert leftovers() == before
