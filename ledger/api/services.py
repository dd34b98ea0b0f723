"""What a request handler reaches: the ledger (writes), the queries (reads), the caller."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.settings import MAX_RECOVERABLE_DAYS
from projections.projector import Projector
from projections.queries import Queries

MAX_PENDING_WAITERS = 16


@dataclass
class ApiServices:
    """Built once by the server; shared by every request."""

    ledger: Ledger
    projector: Projector
    queries: Queries
    # One per worker thread of this process: a create or a cancel wakes them at once.
    worker_wakes: list[threading.Event] = field(default_factory=list)
    projected: int = 0  # every view has applied the log up to here
    # How long a GET of an operation in progress may wait for this process's workers to
    # finish it (0: answer at once).
    pending_wait: float = 0.0
    _progress: threading.Condition = field(default_factory=threading.Condition)
    _rounds: int = 0  # worker rounds that saved something
    _waiters: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_PENDING_WAITERS)
    )

    def wake_workers(self) -> None:
        for wake in self.worker_wakes:
            wake.set()

    def worker_progressed(self) -> None:
        """Called by a worker thread after a round that saved something."""
        with self._progress:
            self._rounds += 1
            self._progress.notify_all()

    def await_operation(self, name: str, request_id: str) -> bool:
        """Wait (at most `pending_wait` seconds) until the operation `request_id` of `name`
        is no longer in progress; True if it ended. Only when workers run in this process,
        and for at most MAX_PENDING_WAITERS requests at once (the others answer at once)."""
        if self.pending_wait <= 0 or not self.worker_wakes:
            return False
        if not self._waiters.acquire(blocking=False):
            return False
        try:
            deadline = time.monotonic() + self.pending_wait
            while True:
                with self._progress:
                    seen = self._rounds
                if self._ended(name, request_id):  # outside the lock: it reads the store
                    return True
                with self._progress:
                    while self._rounds == seen:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        self._progress.wait(left)
        finally:
            self._waiters.release()

    def _ended(self, name: str, request_id: str) -> bool:
        cert = self.ledger.find_certificate(name)
        op = cert.operation if cert is not None else None
        return op is None or op.request_id != request_id or not op.in_progress

    def caught_up(self) -> Queries:
        """The queries, once the views hold every event stored so far (read-your-writes)."""
        head = int(self.ledger.recorder.max_notification_id() or 0)
        if head > self.projected:
            self.projector.catch_up()
            self.projected = max(self.projected, head)
        return self.queries

    @property
    def base(self) -> str:
        return self.queries.base

    @property
    def recoverable_days(self) -> int:
        return self.ledger.settings.recoverable_days


@dataclass
class Call:
    """One request: who asks (principal and request id), and the services."""

    services: ApiServices
    ctx: Ctx

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    @property
    def base(self) -> str:
        return self.services.base

    def authorize(self, permission: str, target: str) -> None:
        self.services.ledger.authorize(self.ctx, permission, target)

    def reads(self) -> Queries:
        """The read side, caught up with every write made so far (read-your-writes)."""
        return self.services.caught_up()

    def render(self, body: Any) -> Any:
        """Key Vault JSON, with this vault's retention in every `attributes`."""
        days = self.services.recoverable_days
        if days != MAX_RECOVERABLE_DAYS:
            _retention(body, days)
        return body


def _retention(body: Any, days: int) -> None:
    if isinstance(body, dict):
        attributes = body.get("attributes")
        if isinstance(attributes, dict) and "recoverableDays" in attributes:
            attributes["recoverableDays"] = days
            attributes["recoveryLevel"] = "CustomizedRecoverable+Purgeable"
        for key in ("value", "policy"):
            if isinstance(body.get(key), list | dict):
                _retention(body[key], days)
    elif isinstance(body, list):
        for item in body:
            _retention(item, days)


async def call_of(request: Request) -> Call:
    """FastAPI dependency: the request's Call (the guard put the principal in state)."""
    services: ApiServices = request.app.state.services
    state = request.state
    return Call(services, Ctx(state.principal, state.request_id))
