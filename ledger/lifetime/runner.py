"""The worker's lifetime duties, each pass: fire what fell due, raise notifications from
the log, deliver what the outbox holds."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.leases import Leases
from ledger.lifetime.scheduler import Scheduler
from ledger.notify.deliver import Deliverer
from ledger.notify.feed import Feed
from ledger.notify.outbox import Outbox

FEED_LEASE = "notify/feed"


class LifetimeRunner:
    def __init__(self, ledger: Ledger, leases: Leases, actor: str) -> None:
        settings = ledger.settings.lifetime
        self.leases = leases
        self.scheduler = Scheduler(ledger, settings, actor)
        self.outbox = Outbox(ledger.settings.database.connect())
        self.outbox.feed_position()  # a new ledger's feed starts at the log's head, now
        self.feed = Feed(ledger, self.outbox, settings, actor)
        self.deliverer = Deliverer(ledger, self.outbox, leases, settings, actor)

    def schedule(self) -> int:
        """Fire the lifetime actions and notices that are due; opens renewals."""
        return self.scheduler.run_once()

    def notify(self) -> int:
        """Raise new notifications (one worker at a time), then deliver what is due."""
        behind = self.feed.behind()
        raised = self.feed.run_once() if behind and self.leases.acquire(FEED_LEASE) else 0
        return raised + self.deliverer.run_once()

    def close(self) -> None:
        self.scheduler.close()
        self.outbox.close()
