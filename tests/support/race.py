"""Workers racing each other from one start line, in threads."""

from __future__ import annotations

import threading

from ledger.worker import Worker


def race(workers: list[Worker], rounds: int, timeout: float = 60) -> None:
    """Each worker runs `rounds` rounds in its own thread, all starting together; the
    first failure of any of them is raised here."""
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                worker.run_once()
        except BaseException as exc:  # raised below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    if failures:
        raise failures[0]
