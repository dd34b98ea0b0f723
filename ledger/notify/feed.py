"""Raises notifications from the event log, from a tracked position.

A new version, a failed operation and a lifetime notice each become one `Notification`
whose id is derived from the certificate, version, kind and trigger: raising it twice (two
workers, or a restart before the position moved on) fails on the stream's first version,
so each is raised once. Its outbox rows are written with its `Raised` event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger.application import Ledger
from ledger.domain.certificate import Certificate
from ledger.domain.contacts import CONTACTS_ID, Contacts
from ledger.domain.context import Ctx
from ledger.domain.notification import Notification
from ledger.lifetime.rules import EXPIRED, NOTIFY
from ledger.lifetime.settings import EVENT_TYPES, LifetimeSettings
from ledger.notify.message import event_data
from ledger.notify.outbox import Outbox, OutboxRow

TOPICS = [
    get_topic(Certificate.VersionPromoted),
    get_topic(Certificate.OperationFailed),
    get_topic(Certificate.LifetimeActionTriggered),
]
EMAIL = "email"
WEBHOOK = "webhook:"


def kind_of(event: Any) -> tuple[str, str] | None:
    """(notification kind, trigger) for an event that notifies, else None."""
    if isinstance(event, Certificate.VersionPromoted):
        return "NewVersionCreated", "created"
    if isinstance(event, Certificate.OperationFailed):
        return "OperationFailed", "failed"
    if isinstance(event, Certificate.LifetimeActionTriggered) and event.outcome == NOTIFY:
        kind = "Expired" if event.action == EXPIRED else "NearExpiry"
        return kind, f"{event.action}:{event.trigger}"
    return None


class Feed:
    def __init__(
        self, ledger: Ledger, outbox: Outbox, settings: LifetimeSettings, actor: str
    ) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.settings = settings
        self.actor = actor
        self.batch = 500

    def targets(self, kind: str) -> tuple[list[str], list[str]]:
        """(targets, email recipients) for a notification of `kind` now."""
        targets: list[str] = []
        recipients: list[str] = []
        s = self.settings
        if s.smtp is not None and kind in s.email_events:
            try:
                book: Contacts = self.ledger.repository.get(CONTACTS_ID)
                recipients = [c["email"] for c in book.contacts]
            except AggregateNotFoundError:
                recipients = []
            if recipients:
                targets.append(EMAIL)
        if kind in s.webhook_events:
            targets.extend(WEBHOOK + url for url in s.webhook_urls)
        return targets, recipients

    def notifications(self, event: Any) -> Iterator[tuple[Notification, tuple[OutboxRow, ...]]]:
        found = kind_of(event)
        if found is None:
            return
        kind, trigger = found
        targets, recipients = self.targets(kind)
        if not targets:
            return
        cert_id = UUID(str(event.originator_id))
        try:
            cert: Certificate = self.ledger.repository.get(cert_id)
        except AggregateNotFoundError:
            return
        version = cert.versions.get(event.version)
        if version is None and kind != "OperationFailed":
            return  # purged since
        nbf: datetime | None = version.not_before if version else None
        exp: datetime | None = version.not_after if version else None
        error = None
        if isinstance(event, Certificate.OperationFailed):
            error = {"code": event.code, "message": event.message}
        data = event_data(self.ledger.settings.vault_url, cert.name, event.version, nbf, exp, error)
        note = Notification.raise_(
            Ctx(self.actor, event.request_id),
            cert_id=cert_id,
            name=cert.name,
            version=event.version,
            kind=kind,
            event_type=EVENT_TYPES[kind],
            trigger=trigger,
            time=event.timestamp,
            data=data,
            recipients=recipients,
            targets=targets,
        )
        now = self.ledger.now().timestamp()
        yield note, tuple(OutboxRow(str(note.id), t, now) for t in targets)

    def behind(self) -> bool:
        """True when events were saved since the feed's position."""
        head = int(self.ledger.recorder.max_notification_id() or 0)
        return head > self.outbox.feed_position()

    def run_once(self) -> int:
        """Raise the notifications of the events since the position; how many were raised."""
        recorder = self.ledger.recorder
        raised = 0
        while True:
            position = self.outbox.feed_position()
            head = int(recorder.max_notification_id() or 0)
            if head <= position:
                return raised
            batch = recorder.select_notifications(
                start=position + 1, limit=self.batch, stop=head, topics=TOPICS
            )
            last = batch[-1].id if len(batch) == self.batch else head
            for n in batch if self.settings.delivers else ():
                for note, rows in self.notifications(self.ledger.mapper.to_domain_event(n)):
                    try:
                        self.ledger.save(note, outbox_rows=rows)
                    except IntegrityError:
                        continue  # raised already, by another worker or before a restart
                    raised += 1
                    self.ledger.pause("raised")
            self.outbox.advance_feed(last)
