"""Pause points: stop a process right after a step is saved, to test crash recovery.

`CERTLEDGER_WORKER_PAUSE_AT=<step>` makes the process that saves that step announce it on
standard error and sleep until it is killed. Steps: key_pair, csr, order, certificate,
promoted, cancelled, failed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

Pause = Callable[[str], None]


def no_pause(step: str) -> None:
    return None


def sleeping_pause(pause_at: str | None) -> Pause:
    """A pause that sleeps forever after `pause_at` (nothing when it is None)."""
    if pause_at is None:
        return no_pause

    def pause(step: str) -> None:
        if step != pause_at:
            return
        sys.stderr.write(f"certledger: paused after {step} (pid {os.getpid()})\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)

    return pause
