"""A second process for half of a report: forked, or from a fork server while other threads
run (forking would copy their locks mid-use)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from types import TracebackType
from typing import Any, Generic, TypeVar

from ledger.database import Db

T = TypeVar("T")

# From this many certificates on, two processes build a report.
PARALLEL_FROM = 20_000


def available() -> bool:
    return sys.platform == "linux" and (os.cpu_count() or 1) > 1


def default_jobs() -> int:
    return min(2, os.cpu_count() or 1)


def middle_id(db: Db, parallel_from: int) -> str | None:
    """The certificate id that splits the certificates in two, when there are at least
    `parallel_from` of them and a second process can open the database."""
    if (db.url.is_sqlite and db.url.path is None) or not available():
        return None
    rows = db.execute("SELECT COUNT(*) FROM v_current")
    count = int(rows[0][0]) if rows else 0
    if count < max(2, parallel_from):
        return None
    rows = db.execute(
        "SELECT cert_id FROM v_current ORDER BY cert_id LIMIT 1 OFFSET ?", [count // 2]
    )
    return str(rows[0][0]) if rows else None


class Worker:
    """One worker process; `submit` runs a function there while this process goes on."""

    def __enter__(self) -> Worker:
        method = "fork" if threading.active_count() == 1 else "forkserver"
        self._pool = multiprocessing.get_context(method).Pool(1)
        self._results: list[Result[Any]] = []
        return self

    def submit(self, fn: Callable[..., T], *args: Any) -> Result[T]:
        """Run `fn(*args)` in the worker. Its result comes back through a temporary file:
        through the pool's pipe, hundreds of megabytes would be read 64 KiB at a time by a
        thread that waits for the GIL while this process works."""
        result: Result[T] = Result(self._pool.apply_async(_to_file, (fn, args)))
        self._results.append(result)
        return result

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()
        for result in self._results:
            result.discard()


class Result(Generic[T]):
    def __init__(self, pending: AsyncResult[str]) -> None:
        self._pending = pending

    def get(self) -> T:
        path = self._pending.get()
        try:
            with open(path, "rb") as file:
                result: T = pickle.load(file)
        finally:
            os.unlink(path)
        return result

    def discard(self) -> None:
        """Remove the file of a result that was not read (this process failed first)."""
        if self._pending.ready() and self._pending.successful():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._pending.get())


def _to_file(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    result = fn(*args)
    with tempfile.NamedTemporaryFile("wb", prefix="certledger-report-", delete=False) as file:
        pickle.dump(result, file, protocol=pickle.HIGHEST_PROTOCOL)
    return file.name


@dataclass
class Timings:
    """Seconds spent building a report, added up over its processes: in the database
    (running queries and fetching their rows) and in Python (everything else)."""

    db: float = 0.0
    python: float = 0.0
    cpu: float = 0.0  # CPU seconds of the processes while building

    def add(self, other: Timings) -> None:
        self.db += other.db
        self.python += other.python
        self.cpu += other.cpu


class Stopwatch:
    """Splits the time since it started into database and Python time."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self._start = time.perf_counter()
        self._cpu = time.process_time()
        self._in_db = 0.0

    def query(self, run: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return run()
        finally:
            self._in_db += time.perf_counter() - start

    def stop(self) -> None:
        elapsed = time.perf_counter() - self._start
        self.timings.db += self._in_db
        self.timings.python += elapsed - self._in_db
        self.timings.cpu += time.process_time() - self._cpu
