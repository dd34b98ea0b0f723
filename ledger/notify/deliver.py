"""Delivers what the outbox holds: at least once, retried with backoff, each attempt an event.

A delivery is taken under a lease (one worker at a time), sent, then recorded
(`Delivered` or `DeliveryFailed`) with its outbox row in one transaction. A worker killed
between sending and recording sends again when restarted: the same CloudEvent id and
Message-ID, so receivers can tell.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.domain.notification import DELIVERED, FAILED, PENDING, Notification
from ledger.leases import Leases
from ledger.lifetime.settings import LifetimeSettings
from ledger.notify.feed import EMAIL, WEBHOOK
from ledger.notify.outbox import DueDelivery, Outbox, OutboxUpdate
from ledger.notify.senders import DeliveryError, EmailSender, WebhookSender


class Deliverer:
    def __init__(
        self,
        ledger: Ledger,
        outbox: Outbox,
        leases: Leases,
        settings: LifetimeSettings,
        actor: str,
    ) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.leases = leases
        self.settings = settings
        self.actor = actor
        source = ledger.settings.vault_url
        self.email = EmailSender(settings.smtp, source) if settings.smtp else None
        self.webhook = (
            WebhookSender(
                settings.webhook_secret,
                source,
                settings.webhook_ca_file,
                settings.webhook_timeout,
            )
            if settings.webhook_secret
            else None
        )

    def run_once(self) -> int:
        """Attempt every delivery due now; how many attempts were recorded."""
        done = 0
        for due in self.outbox.due(self.ledger.now().timestamp()):
            if self.deliver(due):
                done += 1
        return done

    def _send(self, note: Notification, target: str) -> None:
        if target == EMAIL:
            if self.email is None:
                raise DeliveryError("no SMTP server is configured (CERTLEDGER_SMTP_HOST)")
            self.email.send(note)
        elif target.startswith(WEBHOOK):
            if self.webhook is None:
                raise DeliveryError("no webhook secret is configured (CERTLEDGER_WEBHOOK_SECRET)")
            self.webhook.send(note, target.removeprefix(WEBHOOK))
        else:
            raise DeliveryError(f"unknown target {target!r}")

    def deliver(self, due: DueDelivery) -> bool:
        key = f"notify/{due.notification_id}/{due.target}"
        if not self.leases.acquire(key):
            return False
        try:
            # Fresh under the lease: another worker may have settled it a moment ago.
            if self.outbox.status(due.notification_id, due.target) != (PENDING, due.attempts):
                return False
            try:
                note: Notification = self.ledger.repository.get(UUID(due.notification_id))
            except AggregateNotFoundError:
                return False
            found = note.deliveries.get(due.target)
            if found is None or found.status != PENDING:
                return False
            try:
                self._send(note, due.target)
                error = None
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # a sender's bug must not stop the others
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                self.ledger.pause("sent")
            self._record(note, due.target, error)
            if error is None:
                self.ledger.pause("delivered")
            return True
        finally:
            self.leases.release(key)

    def _record(self, note: Notification, target: str, error: str | None) -> None:
        """Save the attempt's outcome with its outbox row; reload on a concurrent save."""
        ctx = Ctx(self.actor)
        note_id = note.id
        for tries in range(10):
            if tries:
                note = self.ledger.repository.get(note_id)
            delivery = note.deliveries[target]
            if delivery.status != PENDING:
                return  # recorded by another worker
            attempt = delivery.attempts + 1
            now = self.ledger.now()
            if error is None:
                note.delivered(ctx, target)
                row = OutboxUpdate(str(note_id), target, DELIVERED, attempt, now.timestamp(), None)
            else:
                retry_at = None
                if attempt < self.settings.delivery_attempts:
                    delay = self.settings.delivery_delay(attempt)
                    retry_at = now + timedelta(seconds=delay)
                note.failed(ctx, target, error, retry_at)
                status = PENDING if retry_at is not None else FAILED
                next_at = (retry_at or now).timestamp()
                row = OutboxUpdate(str(note_id), target, status, attempt, next_at, error)
            try:
                self.ledger.save(note, outbox_rows=(row,))
                return
            except IntegrityError:
                continue  # another target of this notification was recorded meanwhile
