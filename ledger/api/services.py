"""What a request handler reaches: the ledger (writes), the queries (reads), the caller."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.settings import MAX_RECOVERABLE_DAYS
from projections.projector import Projector
from projections.queries import Queries


@dataclass
class ApiServices:
    """Built once by the server; shared by every request."""

    ledger: Ledger
    projector: Projector
    queries: Queries
    worker_wake: threading.Event = field(default_factory=threading.Event)
    projected: int = 0  # every view has applied the log up to here

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
