"""A notification: one stream per (certificate version, notification, trigger).

Its id is derived from what it is about, so a notification is raised once however many
workers try; every delivery attempt to each of its targets is an event on its stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.certificate import LedgerEvent
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict

NOTIFICATIONS = uuid5(NAMESPACE_URL, "certledger:notifications")
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def notification_id(cert_id: UUID | str, version: str, kind: str, trigger: str) -> UUID:
    return uuid5(NOTIFICATIONS, f"{cert_id}/{version}/{kind}/{trigger}")


@dataclass
class Delivery:
    """Where one target stands: pending, delivered or failed (no more attempts)."""

    status: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    retry_at: datetime | None = None
    delivered_at: datetime | None = None


class Notification(Aggregate):
    """What is told (`data`, Key Vault's Event Grid fields) and to whom (`targets`)."""

    class Raised(LedgerEvent, Aggregate.Created):
        cert_id: str
        name: str
        version: str
        kind: str  # NearExpiry, Expired, NewVersionCreated, OperationFailed
        event_type: str  # Microsoft.KeyVault.Certificate...
        trigger: str
        time: datetime  # when it happened (the ledger's clock)
        data: dict[str, Any]
        recipients: list[str]  # the contacts' emails, for the email target
        targets: list[str]  # "email", "webhook:<url>"

    def __init__(
        self,
        cert_id: str,
        name: str,
        version: str,
        kind: str,
        event_type: str,
        trigger: str,
        time: datetime,
        data: dict[str, Any],
        recipients: list[str],
        targets: list[str],
    ) -> None:
        self.cert_id = cert_id
        self.name = name
        self.cert_version = version  # (`version` is the stream's)
        self.kind = kind
        self.event_type = event_type
        self.trigger = trigger
        self.time = time
        self.data = dict(data)
        self.recipients = list(recipients)
        self.deliveries = {target: Delivery() for target in targets}

    @classmethod
    def raise_(
        cls,
        ctx: Ctx,
        *,
        cert_id: UUID,
        name: str,
        version: str,
        kind: str,
        event_type: str,
        trigger: str,
        time: datetime,
        data: dict[str, Any],
        recipients: list[str],
        targets: list[str],
    ) -> Notification:
        return cls._create(
            cls.Raised,
            id=notification_id(cert_id, version, kind, trigger),
            actor=ctx.actor,
            request_id=ctx.request_id,
            cert_id=str(cert_id),
            name=name,
            version=version,
            kind=kind,
            event_type=event_type,
            trigger=trigger,
            time=time,
            data=data,
            recipients=recipients,
            targets=targets,
        )

    def pending(self, target: str) -> Delivery:
        found = self.deliveries.get(target)
        if found is None or found.status != PENDING:
            raise Conflict(f"notification {self.id} has no pending delivery to {target}")
        return found

    def delivered(self, ctx: Ctx, target: str) -> None:
        attempt = self.pending(target).attempts + 1
        self.trigger_event(self.Delivered, **ctx.as_event_fields(), target=target, attempt=attempt)

    def failed(self, ctx: Ctx, target: str, error: str, retry_at: datetime | None) -> None:
        """A failed attempt; `retry_at` None: no more attempts."""
        attempt = self.pending(target).attempts + 1
        self.trigger_event(
            self.DeliveryFailed,
            **ctx.as_event_fields(),
            target=target,
            attempt=attempt,
            error=error,
            retry_at=retry_at,
        )

    class Delivered(LedgerEvent):
        target: str
        attempt: int

        def apply(self, aggregate: Notification) -> None:
            d = aggregate.deliveries[self.target]
            d.status, d.attempts, d.delivered_at = DELIVERED, self.attempt, self.timestamp
            d.retry_at = None

    class DeliveryFailed(LedgerEvent):
        target: str
        attempt: int
        error: str
        retry_at: datetime | None

        def apply(self, aggregate: Notification) -> None:
            d = aggregate.deliveries[self.target]
            d.attempts, d.last_error, d.retry_at = self.attempt, self.error, self.retry_at
            if self.retry_at is None:
                d.status = FAILED
