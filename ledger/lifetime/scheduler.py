"""Fires lifetime actions and expiry notices when they fall due, once per version.

The lifetime view says which certificates may have something due; the decision is taken
on the aggregate, and recorded as `LifetimeActionTriggered` on the certificate's stream.
Saves use optimistic concurrency, so of several workers (or a restarted one) exactly one
records a trigger. AutoRenew opens the renewal's operation in the same transaction
(`RenewalAttempted`, `OperationOpened`, `KeyPairCreated`, `CsrIssued`); the worker then
takes it forward like any other. A renewal whose operation fails is recorded
(`RenewalFailed`, with the CA's error) and attempted again after a doubling delay.

Deleted certificates whose retention period has ended are purged (`Purged`, by the system
actor), their keys destroyed as a user's purge destroys them.
"""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.application import Ledger
from ledger.domain.certificate import CANCELLED, FAILED, Certificate
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict, LedgerError
from ledger.domain.ids import issuer_id
from ledger.domain.issuer import RESERVED_ISSUERS, Issuer
from ledger.keys.store import CustodyRow
from ledger.lifetime.rules import (
    RENEW,
    CloseRenewal,
    Fire,
    LifetimeFacts,
    RenewalFacts,
    RetryRenewal,
    Step,
    actions_from_policy,
    issuer_from_policy,
    steps_due,
)
from ledger.lifetime.settings import LifetimeSettings
from projections.deleted import DeletedView, due_purges
from projections.lifetime import LifetimeView, due_certificates
from projections.projector import Projector


def facts_of(cert: Certificate) -> LifetimeFacts | None:
    """The rules' facts for the certificate's current version (None: nothing to schedule)."""
    if not cert.exists or cert.current is None:
        return None
    v = cert.versions[cert.current]
    if v.not_before is None or v.not_after is None:
        return None
    r = v.renewal
    op = cert.operation
    return LifetimeFacts(
        name=cert.name,
        version=v.version,
        nbf=v.not_before,
        exp=v.not_after,
        issuer=issuer_from_policy(cert.policy),
        actions=actions_from_policy(cert.policy),
        fired=set(v.fired),
        op_version=op.version if op is not None and op.in_progress else None,
        renewal=RenewalFacts(r.attempts, r.operation, r.retry_at, r.gave_up) if r else None,
    )


class Scheduler:
    def __init__(self, ledger: Ledger, settings: LifetimeSettings, actor: str) -> None:
        self.ledger = ledger
        self.settings = settings
        self.actor = actor
        self.projector = Projector(
            ledger.settings.database.connect(),
            ledger.recorder,
            ledger.mapper,
            # In VIEW_CLASSES order, as every projector: on PostgreSQL, projectors lock the
            # views' tables in one order, or a table creation and a batch could deadlock.
            views=[DeletedView(), LifetimeView()],
        )

    def close(self) -> None:
        self.projector.db.close()

    def run_once(self) -> int:
        """Record everything due now; how many certificates moved on."""
        self.projector.catch_up()
        now = self.ledger.now()
        moved = 0
        for cert_id in due_certificates(self.projector.db, now, self.settings.near_expiry_days):
            try:
                if self.advance(UUID(cert_id), now):
                    moved += 1
            except Conflict:
                continue  # another worker saved first; looked at again next pass
            except LedgerError as exc:  # one certificate's trouble must not stop the others
                sys.stderr.write(f"certledger: lifetime of {cert_id}: {exc}\n")
        return moved + self.purge(now)

    def purge(self, now: datetime) -> int:
        """Purge the deleted certificates whose retention period has ended."""
        purged = 0
        for cert_id in due_purges(self.projector.db, now):
            try:
                purged += self.ledger.purge_if_due(UUID(cert_id))
            except Conflict:
                continue  # recovered, purged or restored meanwhile: looked at again next pass
            except LedgerError as exc:
                sys.stderr.write(f"certledger: purge of {cert_id}: {exc}\n")
        return purged

    def advance(self, cert_id: UUID, now: datetime) -> bool:
        try:
            cert: Certificate = self.ledger.repository.get(cert_id)
        except AggregateNotFoundError:
            return False
        facts = facts_of(cert)
        if facts is None:
            return False
        steps = steps_due(facts, now, self.settings.near_expiry_days)
        if not steps:
            return False
        ctx = Ctx(self.actor)
        writes: tuple[CustodyRow, ...] = ()
        for step in steps:
            writes += self._record(cert, facts, step, ctx, now)
        self.ledger.commit(cert, custody=writes)
        self.ledger.pause("lifetime")
        return True

    def _record(
        self, cert: Certificate, facts: LifetimeFacts, step: Step, ctx: Ctx, now: datetime
    ) -> tuple[CustodyRow, ...]:
        version = facts.version
        if isinstance(step, Fire):
            cert.trigger_lifetime_action(
                ctx,
                version,
                action=step.action,
                trigger=step.trigger,
                due=step.due,
                outcome=step.outcome,
            )
            return self._renew(cert, version, ctx) if step.outcome == RENEW else ()
        if isinstance(step, RetryRenewal):
            return self._renew(cert, version, ctx)
        assert isinstance(step, CloseRenewal)
        code, message, retry = self._ending(cert, step.operation)
        renewal = cert.versions[version].renewal
        assert renewal is not None
        retry_at = None
        if retry and renewal.attempts < self.settings.renewal_attempts:
            delay = self.settings.renewal_delay(renewal.attempts)
            retry_at = now + timedelta(seconds=delay)
        elif retry and renewal.attempts > 1:
            message += f" (gave up after {renewal.attempts} renewal attempts)"
        cert.fail_renewal(ctx, version, code=code, message=message, retry_at=retry_at)
        return ()

    @staticmethod
    def _ending(cert: Certificate, operation: str) -> tuple[str, str, bool]:
        """(code, message, worth retrying) for a renewal operation that ended unpromoted."""
        op = cert.operation
        if op is not None and op.version == operation:
            if op.status == FAILED:
                return op.error_code or "Failed", op.error_message or op.status_details, True
            if op.status == CANCELLED:
                return "Cancelled", op.status_details, False
        return "OperationDeleted", "the renewal's operation was deleted", False

    def _issuer_name(self, cert: Certificate) -> str:
        name = issuer_from_policy(cert.policy)
        if name.lower() in RESERVED_ISSUERS:
            return "Self" if name.lower() == "self" else "Unknown"
        try:
            issuer: Issuer = self.ledger.repository.get(issuer_id(name))
        except AggregateNotFoundError:
            return name  # the worker fails the operation: IssuerNotFound
        return issuer.name

    def _renew(self, cert: Certificate, version: str, ctx: Ctx) -> tuple[CustodyRow, ...]:
        """Open the renewal's operation with the stored policy: a new key unless reuse_key."""
        policy = self.ledger.policy_of(cert)
        issuer_name = self._issuer_name(cert)
        new_version = uuid.uuid4().hex
        cert.attempt_renewal(ctx, version, new_version, issuer_name)
        cert.open_operation(
            ctx,
            new_version,
            issuer_name,
            policy.secret_props.contentType,
            tags=dict(cert.versions[version].tags),
        )
        writes = self.ledger.make_key_pair(ctx, cert, policy)
        self.ledger.issue_csr(ctx, cert, policy)
        return writes
