"""The PostgreSQL store's read-ahead: batches in order, errors handed over, a clean stop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ledger.audit.postgres_store import read_ahead


def batches(count: int) -> Any:
    made = iter([[(i,)] for i in range(count)] + [[]])
    return lambda: next(made)


def test_every_batch_in_order_then_the_end() -> None:
    assert [b[0][0] for b in read_ahead(batches(50))] == list(range(50))


def test_an_error_while_fetching_reaches_the_reader() -> None:
    calls = iter([[(1,)], [(2,)]])

    def fetch() -> list[tuple[Any, ...]]:
        try:
            return next(calls)
        except StopIteration:
            raise RuntimeError("connection lost") from None

    got = []
    with pytest.raises(RuntimeError, match="connection lost"):
        for batch in read_ahead(fetch):
            got.append(batch)
    assert got == [[(1,)], [(2,)]]


def test_a_reader_that_stops_early_stops_the_thread() -> None:
    before = threading.active_count()
    fetched = []

    def fetch() -> list[tuple[Any, ...]]:
        fetched.append(1)
        return [(len(fetched),)]  # never ends by itself

    reader = read_ahead(fetch, depth=2)
    assert next(reader) == [(1,)]
    reader.close()
    assert threading.active_count() == before
    assert len(fetched) <= 4  # at most the queue's depth ahead
