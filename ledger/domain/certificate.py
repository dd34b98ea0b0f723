"""The Certificate aggregate: one event stream per certificate name.

The aggregate holds facts only (public keys, CSRs, certificates, policy JSON,
attributes); private keys live in key custody and are referenced by key id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Conflict, NotFound, PendingNotFound
from ledger.domain.ids import certificate_id, check_name

RECOVERABLE_DAYS = 90

IN_PROGRESS = "inProgress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass
class Version:
    """One version of a certificate, as the events built it."""

    version: str
    created: datetime
    origin: str
    issuer_name: str
    policy_fingerprint: str
    content_type: str
    updated: datetime
    key_id: str | None = None
    kty: str | None = None
    key_size: int | None = None
    crv: str | None = None
    public_key_pem: str | None = None
    exportable: bool = True
    key_reused: bool = False
    csr_der: str | None = None
    csr_sha256: str | None = None
    provider: str | None = None
    order_ref: str | None = None
    cert_der: str | None = None
    chain_der: list[str] = field(default_factory=list)
    x5t: str | None = None
    serial: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    ca_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    promoted_at: datetime | None = None
    superseded_at: datetime | None = None
    actor: str = ""
    # Lifetime actions and notices fired for this version ("AutoRenew:lifetime_percentage=80").
    fired: list[str] = field(default_factory=list)
    renewal: Renewal | None = None


@dataclass
class Renewal:
    """The automatic renewal of a version, from its AutoRenew trigger on."""

    attempts: int = 0
    operation: str | None = None  # the version the current attempt is creating
    retry_at: datetime | None = None
    gave_up: bool = False
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class Operation:
    """The pending (or last finished) creation operation."""

    version: str
    issuer_name: str
    request_id: str
    opened_at: datetime
    status: str = IN_PROGRESS
    status_details: str = "Pending certificate created. Certificate request is in progress."
    cancellation_requested: bool = False
    error_code: str | None = None
    error_message: str | None = None
    closed_at: datetime | None = None
    attempts: int = 0
    retry_at: datetime | None = None

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS

    def due(self, now: datetime) -> bool:
        """False while a retry is scheduled for later (a cancellation is always due)."""
        return self.cancellation_requested or self.retry_at is None or now >= self.retry_at


class LedgerEvent(Aggregate.Event):
    """Every event names who acted and under which request."""

    actor: str
    request_id: str


class Certificate(Aggregate):
    """A named certificate: its policy, versions and pending operation."""

    class Registered(LedgerEvent, Aggregate.Created):
        name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self.policy: dict[str, Any] | None = None
        self.policy_fingerprint: str | None = None
        self.versions: dict[str, Version] = {}
        self.current: str | None = None
        self.operation: Operation | None = None
        self.deleted_on: datetime | None = None
        # When a soft-deleted certificate's retention ends and it is purged by itself.
        self.scheduled_purge: datetime | None = None
        self.generation = 1

    @staticmethod
    def create_id(name: str) -> UUID:
        return certificate_id(name)

    def __deepcopy__(self, memo: dict[int, Any]) -> Certificate:
        # Cheaper than a generic deep copy: the policy dict is replaced, never mutated.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.versions = {
            k: replace(
                v,
                tags=dict(v.tags),
                chain_der=list(v.chain_der),
                fired=list(v.fired),
                renewal=replace(v.renewal) if v.renewal else None,
            )
            for k, v in self.versions.items()
        }
        clone.operation = replace(self.operation) if self.operation else None
        clone._pending_events = list(self._pending_events)
        return clone

    @classmethod
    def register(cls, ctx: Ctx, name: str) -> Certificate:
        check_name(name)
        return cls._create(cls.Registered, name=name, actor=ctx.actor, request_id=ctx.request_id)

    # -- queries ----------------------------------------------------------

    @property
    def exists(self) -> bool:
        """True when the name holds a live (not deleted, not purged) certificate."""
        return self.deleted_on is None and (self.current is not None or self.operation is not None)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_on is not None

    def version_of(self, version: str | None) -> Version:
        """The named version, or the current one when `version` is empty."""
        if not version:
            if self.current is None:
                raise NotFound(f"certificate {self.name!r} has no completed version yet")
            return self.versions[self.current]
        found = self.versions.get(version)
        if found is None or found.cert_der is None:
            raise NotFound(f"certificate {self.name!r} has no version {version!r}")
        return found

    def pending_version(self) -> Version:
        op = self.require_operation()
        return self.versions[op.version]

    def require_operation(self) -> Operation:
        if self.operation is None:
            raise PendingNotFound(f"certificate {self.name!r} has no pending operation")
        return self.operation

    def require_in_progress(self, version: str | None = None) -> Operation:
        op = self.require_operation()
        if not op.in_progress:
            raise Conflict(f"the operation on certificate {self.name!r} is already {op.status}")
        if version is not None and op.version != version:
            raise Conflict(f"version {version!r} is not the pending version of {self.name!r}")
        return op

    def completed_versions(self) -> list[Version]:
        return [v for v in self.versions.values() if v.cert_der is not None and v.promoted_at]

    # -- commands ---------------------------------------------------------

    def _emit(self, event_class: type[LedgerEvent], ctx: Ctx, **kwargs: Any) -> None:
        self.trigger_event(event_class, **ctx.as_event_fields(), **kwargs)

    def _check_not_deleted(self) -> None:
        if self.deleted_on is not None:
            raise Conflict(
                f"certificate {self.name!r} is deleted but recoverable: recover or purge it first",
                inner_code="ObjectIsDeletedButRecoverable",
            )

    def replace_policy(self, ctx: Ctx, policy: dict[str, Any], fingerprint: str) -> None:
        self._check_not_deleted()
        if fingerprint != self.policy_fingerprint:
            self._emit(self.PolicyReplaced, ctx, policy=policy, fingerprint=fingerprint)

    def open_operation(
        self,
        ctx: Ctx,
        version: str,
        issuer_name: str,
        content_type: str,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> None:
        self._check_not_deleted()
        if self.operation is not None and self.operation.in_progress:
            raise Conflict(
                f"certificate {self.name!r} already has an operation in progress; "
                "cancel or complete it first"
            )
        if self.policy is None or self.policy_fingerprint is None:
            raise BadParameter(f"certificate {self.name!r} needs a policy for its first creation")
        self._emit(
            self.OperationOpened,
            ctx,
            version=version,
            issuer_name=issuer_name,
            policy_fingerprint=self.policy_fingerprint,
            content_type=content_type,
            tags=dict(tags or {}),
            enabled=enabled,
        )

    def create_key_pair(
        self,
        ctx: Ctx,
        *,
        key_id: str,
        kty: str,
        key_size: int | None,
        crv: str | None,
        public_key_pem: str,
        exportable: bool,
        reused: bool,
    ) -> None:
        op = self.require_in_progress()
        self._emit(
            self.KeyPairCreated,
            ctx,
            version=op.version,
            key_id=key_id,
            kty=kty,
            key_size=key_size,
            crv=crv,
            public_key_pem=public_key_pem,
            exportable=exportable,
            reused=reused,
        )

    def issue_csr(self, ctx: Ctx, csr_der: str, csr_sha256: str) -> None:
        op = self.require_in_progress()
        self._emit(self.CsrIssued, ctx, version=op.version, csr_der=csr_der, csr_sha256=csr_sha256)

    def place_order(self, ctx: Ctx, *, issuer_name: str, provider: str, order_ref: str) -> None:
        op = self.require_in_progress()
        self._emit(
            self.IssuerOrderPlaced,
            ctx,
            version=op.version,
            issuer_name=issuer_name,
            provider=provider,
            order_ref=order_ref,
        )

    def merge_x509(
        self,
        ctx: Ctx,
        facts: X509Facts,
        source: str,
        ca_changes: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """The certificate arrived; `ca_changes` is what it differs in from the request."""
        op = self.require_in_progress()
        if self.versions[op.version].cert_der is not None:
            raise Conflict(f"version {op.version!r} of {self.name!r} already has its certificate")
        self._emit(
            self.X509Merged,
            ctx,
            version=op.version,
            source=source,
            ca_changes=dict(ca_changes or {}),
            **facts.as_fields(),
        )

    def schedule_retry(
        self, ctx: Ctx, *, step: str, code: str, message: str, retry_at: datetime
    ) -> None:
        """A step failed in a way worth retrying; the worker tries again at `retry_at`."""
        op = self.require_in_progress()
        self._emit(
            self.RetryScheduled,
            ctx,
            version=op.version,
            step=step,
            attempt=op.attempts + 1,
            code=code,
            message=message,
            retry_at=retry_at,
        )

    def promote(self, ctx: Ctx) -> None:
        op = self.require_in_progress()
        if self.versions[op.version].cert_der is None:
            raise Conflict(f"version {op.version!r} of {self.name!r} has no certificate to promote")
        self._emit(self.VersionPromoted, ctx, version=op.version, previous_version=self.current)
        if not self.versions[op.version].enabled:
            # Created with enabled=false: it comes out disabled, in the same commit.
            self._emit(self.AttributesUpdated, ctx, version=op.version, enabled=False, tags=None)

    def request_cancellation(self, ctx: Ctx) -> None:
        op = self.require_in_progress()
        if not op.cancellation_requested:
            self._emit(self.CancellationRequested, ctx, version=op.version)

    def cancel(self, ctx: Ctx, reason: str) -> None:
        op = self.require_in_progress()
        self._emit(self.OperationCancelled, ctx, version=op.version, reason=reason)

    def fail(self, ctx: Ctx, code: str, message: str) -> None:
        op = self.require_in_progress()
        self._emit(self.OperationFailed, ctx, version=op.version, code=code, message=message)

    def trigger_lifetime_action(
        self, ctx: Ctx, version: str, *, action: str, trigger: str, due: datetime, outcome: str
    ) -> None:
        """A lifetime action or expiry notice fired for `version`: once, ever."""
        v = self.versions.get(version)
        if v is None or v.cert_der is None:
            raise NotFound(f"certificate {self.name!r} has no version {version!r}")
        key = f"{action}:{trigger}"
        if key in v.fired:
            raise Conflict(f"{key} already fired for version {version!r} of {self.name!r}")
        self._emit(
            self.LifetimeActionTriggered,
            ctx,
            version=version,
            action=action,
            trigger=trigger,
            due=due,
            outcome=outcome,
        )

    def attempt_renewal(self, ctx: Ctx, version: str, new_version: str, issuer_name: str) -> None:
        """Renewal attempt of `version`: the operation creating `new_version` opens next."""
        renewal = self.versions[version].renewal
        if renewal is None:
            raise Conflict(f"version {version!r} of {self.name!r} is not being renewed")
        if renewal.operation is not None:
            raise Conflict(f"the renewal of version {version!r} of {self.name!r} is in progress")
        self._emit(
            self.RenewalAttempted,
            ctx,
            version=version,
            attempt=renewal.attempts + 1,
            new_version=new_version,
            issuer_name=issuer_name,
        )

    def fail_renewal(
        self, ctx: Ctx, version: str, *, code: str, message: str, retry_at: datetime | None
    ) -> None:
        """The renewal attempt ended without a new version; retried at `retry_at` (or never)."""
        renewal = self.versions[version].renewal
        if renewal is None or renewal.operation is None:
            raise Conflict(f"no renewal attempt of version {version!r} of {self.name!r} is open")
        self._emit(
            self.RenewalFailed,
            ctx,
            version=version,
            attempt=renewal.attempts,
            new_version=renewal.operation,
            code=code,
            message=message,
            retry_at=retry_at,
        )

    def delete_operation(self, ctx: Ctx) -> None:
        op = self.require_operation()
        self._emit(self.OperationDeleted, ctx, version=op.version, status=op.status)

    def import_version(
        self,
        ctx: Ctx,
        *,
        version: str,
        key_id: str,
        kty: str,
        key_size: int | None,
        crv: str | None,
        public_key_pem: str,
        content_type: str,
        facts: X509Facts,
    ) -> None:
        self._check_not_deleted()
        if self.operation is not None and self.operation.in_progress:
            raise Conflict(f"certificate {self.name!r} has an operation in progress")
        if self.policy_fingerprint is None:
            raise BadParameter(f"certificate {self.name!r} needs a policy before an import")
        self._emit(
            self.CertificateImported,
            ctx,
            version=version,
            key_id=key_id,
            kty=kty,
            key_size=key_size,
            crv=crv,
            public_key_pem=public_key_pem,
            content_type=content_type,
            policy_fingerprint=self.policy_fingerprint,
            **facts.as_fields(),
        )
        self._emit(self.VersionPromoted, ctx, version=version, previous_version=self.current)

    def update_attributes(
        self,
        ctx: Ctx,
        version: str | None,
        *,
        enabled: bool | None = None,
        tags: dict[str, str] | None = None,
    ) -> Version:
        self._check_not_deleted()
        target = self.version_of(version)
        if enabled is None and tags is None:
            return target
        self._emit(self.AttributesUpdated, ctx, version=target.version, enabled=enabled, tags=tags)
        return target

    def delete(self, ctx: Ctx, recoverable_days: int = RECOVERABLE_DAYS) -> None:
        self._check_not_deleted()
        if not self.exists:
            raise NotFound(f"certificate {self.name!r} not found")
        self._emit(self.Deleted, ctx, recoverable_days=recoverable_days)

    def recover(self, ctx: Ctx) -> None:
        if self.deleted_on is None:
            raise NotFound(f"deleted certificate {self.name!r} not found")
        self._emit(self.Recovered, ctx)

    def purge(self, ctx: Ctx) -> None:
        if self.deleted_on is None:
            raise NotFound(f"deleted certificate {self.name!r} not found")
        self._emit(self.Purged, ctx, generation=self.generation)

    def purge_due(self, now: datetime) -> bool:
        """True when the certificate is deleted and its retention period has ended."""
        return self.scheduled_purge is not None and now >= self.scheduled_purge

    def restore(
        self,
        ctx: Ctx,
        *,
        backup_sha256: str,
        source_id: str,
        source_vault: str,
        history: Sequence[Any],
        renamed: dict[str, str] | None = None,
    ) -> None:
        """Replay a backup's history on this name: a `Restored` marker, then each event again.

        The replayed events carry the restoring principal and request; the marker keeps
        who did what, and when, in the source ledger. `renamed` maps version ids this
        stream has used before (a restore after a purge) to fresh ones.
        """
        renamed = renamed or {}
        self._check_not_deleted()
        if self.exists:
            raise Conflict(f"certificate {self.name!r} exists: a restore needs a free name")
        replayable = [e for e in history if type(e) in REPLAYABLE]
        if len(replayable) != len(history):
            raise BadParameter("the backup holds events that cannot be restored")
        self._emit(
            self.Restored,
            ctx,
            backup_sha256=backup_sha256,
            source_id=source_id,
            source_vault=source_vault,
            history=[
                {
                    "event": type(e).__qualname__,
                    "version": e.originator_version,
                    "timestamp": e.timestamp.isoformat(),
                    "actor": getattr(e, "actor", ""),
                    "request_id": getattr(e, "request_id", ""),
                }
                for e in history
            ],
            renamed=renamed,
        )
        for event in history:
            fields = {k: v for k, v in event.__dict__.items() if k not in _ENVELOPE_FIELDS}
            for key in ("version", "previous_version"):
                if fields.get(key) in renamed:
                    fields[key] = renamed[fields[key]]
            self._emit(type(event), ctx, **fields)  # type: ignore[arg-type]

    # -- events -----------------------------------------------------------

    class PolicyReplaced(LedgerEvent):
        policy: dict[str, Any]
        fingerprint: str

        def apply(self, aggregate: Certificate) -> None:
            aggregate.policy = self.policy
            aggregate.policy_fingerprint = self.fingerprint

    class OperationOpened(LedgerEvent):
        class_version: ClassVar[int] = 2
        version: str
        issuer_name: str
        policy_fingerprint: str
        content_type: str
        tags: dict[str, str]
        enabled: bool  # the version's state once promoted (a create's attributes.enabled)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("enabled", True)

        def apply(self, aggregate: Certificate) -> None:
            aggregate.versions[self.version] = Version(
                version=self.version,
                created=self.timestamp,
                updated=self.timestamp,
                origin="self" if self.issuer_name.lower() == "self" else "pending",
                issuer_name=self.issuer_name,
                policy_fingerprint=self.policy_fingerprint,
                content_type=self.content_type,
                tags=dict(self.tags),
                actor=self.actor,
                enabled=self.enabled,
            )
            aggregate.operation = Operation(
                version=self.version,
                issuer_name=self.issuer_name,
                request_id=self.request_id,
                opened_at=self.timestamp,
            )

    class KeyPairCreated(LedgerEvent):
        version: str
        key_id: str
        kty: str
        key_size: int | None
        crv: str | None
        public_key_pem: str
        exportable: bool
        reused: bool

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            v.key_id = self.key_id
            v.kty, v.key_size, v.crv = self.kty, self.key_size, self.crv
            v.public_key_pem = self.public_key_pem
            v.exportable = self.exportable
            v.key_reused = self.reused

    class CsrIssued(LedgerEvent):
        version: str
        csr_der: str
        csr_sha256: str

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            v.csr_der, v.csr_sha256 = self.csr_der, self.csr_sha256

    class IssuerOrderPlaced(LedgerEvent):
        version: str
        issuer_name: str
        provider: str
        order_ref: str

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            v.provider, v.order_ref = self.provider, self.order_ref
            op = aggregate.operation
            assert op is not None
            op.status_details = f"Order {self.order_ref} placed with {self.provider}."
            op.attempts, op.retry_at = 0, None

    class RetryScheduled(LedgerEvent):
        version: str
        step: str
        attempt: int
        code: str
        message: str
        retry_at: datetime

        def apply(self, aggregate: Certificate) -> None:
            op = aggregate.require_operation()
            op.attempts, op.retry_at = self.attempt, self.retry_at
            op.status_details = (
                f"Attempt {self.attempt} at step {self.step} failed ({self.code}: "
                f"{self.message}); retrying."
            )

    class X509Merged(LedgerEvent):
        class_version: ClassVar[int] = 3
        version: str
        source: str
        cert_der: str
        chain_der: list[str]
        x5t: str
        serial: str
        not_before: datetime
        not_after: datetime
        # What the issued certificate differs in from the requested profile, by aspect
        # (validity, subject, dns_names, emails, upns, key_usage, ekus).
        ca_changes: dict[str, dict[str, Any]]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # v1 had no source and no chain: it was always a user's merge of a leaf.
            state.setdefault("source", "merge")
            state.setdefault("chain_der", [])

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            # v2 recorded no comparison with the request: an empty one.
            state.setdefault("ca_changes", {})

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            v.origin = self.source
            v.cert_der, v.chain_der, v.x5t = self.cert_der, list(self.chain_der), self.x5t
            v.serial, v.not_before, v.not_after = self.serial, self.not_before, self.not_after
            v.ca_changes = dict(self.ca_changes)
            v.updated = self.timestamp
            op = aggregate.operation
            if op is not None and op.version == self.version:
                op.attempts, op.retry_at = 0, None

    class VersionPromoted(LedgerEvent):
        version: str
        previous_version: str | None

        def apply(self, aggregate: Certificate) -> None:
            if self.previous_version and self.previous_version in aggregate.versions:
                aggregate.versions[self.previous_version].superseded_at = self.timestamp
            aggregate.versions[self.version].promoted_at = self.timestamp
            aggregate.current = self.version
            op = aggregate.operation
            if op is not None and op.version == self.version:
                op.status = COMPLETED
                op.status_details = ""
                op.closed_at = self.timestamp

    class CancellationRequested(LedgerEvent):
        version: str

        def apply(self, aggregate: Certificate) -> None:
            op = aggregate.require_operation()
            op.cancellation_requested = True

    class OperationCancelled(LedgerEvent):
        version: str
        reason: str

        def apply(self, aggregate: Certificate) -> None:
            op = aggregate.require_operation()
            op.status, op.status_details, op.closed_at = CANCELLED, self.reason, self.timestamp

    class OperationFailed(LedgerEvent):
        version: str
        code: str
        message: str

        def apply(self, aggregate: Certificate) -> None:
            op = aggregate.require_operation()
            op.status, op.closed_at = FAILED, self.timestamp
            op.status_details = self.message
            op.error_code, op.error_message = self.code, self.message

    class LifetimeActionTriggered(LedgerEvent):
        version: str
        action: str  # AutoRenew, EmailContacts, NearExpiry or Expired
        trigger: str  # lifetime_percentage=N, days_before_expiry=N or expired
        due: datetime  # when it fell due (the ledger's clock)
        outcome: str  # renew, notify or skipped

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            v.fired.append(f"{self.action}:{self.trigger}")
            if self.outcome == "renew":
                v.renewal = Renewal()

    class RenewalAttempted(LedgerEvent):
        version: str  # the version being renewed
        attempt: int
        new_version: str  # the version its operation creates
        issuer_name: str

        def apply(self, aggregate: Certificate) -> None:
            renewal = aggregate.versions[self.version].renewal
            assert renewal is not None
            renewal.attempts, renewal.operation = self.attempt, self.new_version
            renewal.retry_at = None

    class RenewalFailed(LedgerEvent):
        version: str
        attempt: int
        new_version: str
        code: str
        message: str
        retry_at: datetime | None  # None: no more attempts

        def apply(self, aggregate: Certificate) -> None:
            renewal = aggregate.versions[self.version].renewal
            assert renewal is not None
            renewal.operation, renewal.retry_at = None, self.retry_at
            renewal.gave_up = self.retry_at is None
            renewal.error_code, renewal.error_message = self.code, self.message

    class OperationDeleted(LedgerEvent):
        version: str
        status: str

        def apply(self, aggregate: Certificate) -> None:
            aggregate.operation = None
            unfinished = aggregate.versions.get(self.version)
            if unfinished is not None and unfinished.promoted_at is None:
                del aggregate.versions[self.version]

    class CertificateImported(LedgerEvent):
        version: str
        key_id: str
        kty: str
        key_size: int | None
        crv: str | None
        public_key_pem: str
        content_type: str
        policy_fingerprint: str
        cert_der: str
        chain_der: list[str]
        x5t: str
        serial: str
        not_before: datetime
        not_after: datetime

        def apply(self, aggregate: Certificate) -> None:
            aggregate.versions[self.version] = Version(
                version=self.version,
                created=self.timestamp,
                updated=self.timestamp,
                origin="import",
                issuer_name="Unknown",
                policy_fingerprint=self.policy_fingerprint,
                content_type=self.content_type,
                key_id=self.key_id,
                kty=self.kty,
                key_size=self.key_size,
                crv=self.crv,
                public_key_pem=self.public_key_pem,
                cert_der=self.cert_der,
                chain_der=list(self.chain_der),
                x5t=self.x5t,
                serial=self.serial,
                not_before=self.not_before,
                not_after=self.not_after,
                actor=self.actor,
            )

    class AttributesUpdated(LedgerEvent):
        version: str
        enabled: bool | None
        tags: dict[str, str] | None

        def apply(self, aggregate: Certificate) -> None:
            v = aggregate.versions[self.version]
            if self.enabled is not None:
                v.enabled = self.enabled
            if self.tags is not None:
                v.tags = dict(self.tags)
            v.updated = self.timestamp

    class Deleted(LedgerEvent):
        recoverable_days: int

        def apply(self, aggregate: Certificate) -> None:
            aggregate.deleted_on = self.timestamp
            aggregate.scheduled_purge = self.timestamp + timedelta(days=self.recoverable_days)

    class Recovered(LedgerEvent):
        def apply(self, aggregate: Certificate) -> None:
            aggregate.deleted_on = None
            aggregate.scheduled_purge = None

    class Restored(LedgerEvent):
        backup_sha256: str
        source_id: str
        source_vault: str
        history: list[dict[str, Any]]
        renamed: dict[str, str]

        def apply(self, aggregate: Certificate) -> None:
            pass  # a marker: the replayed events that follow carry the state

    class Purged(LedgerEvent):
        generation: int

        def apply(self, aggregate: Certificate) -> None:
            # The history stays in the log; the name starts afresh.
            aggregate.policy = None
            aggregate.policy_fingerprint = None
            aggregate.versions = {}
            aggregate.current = None
            aggregate.operation = None
            aggregate.deleted_on = None
            aggregate.scheduled_purge = None
            aggregate.generation = self.generation + 1


@dataclass(frozen=True)
class X509Facts:
    """What the ledger records of an X.509 certificate (all public)."""

    cert_der: str
    chain_der: list[str]
    x5t: str
    serial: str
    not_before: datetime
    not_after: datetime

    def as_fields(self) -> dict[str, Any]:
        return {
            "cert_der": self.cert_der,
            "chain_der": list(self.chain_der),
            "x5t": self.x5t,
            "serial": self.serial,
            "not_before": self.not_before,
            "not_after": self.not_after,
        }


_ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "actor", "request_id"}
)
# Events a restore replays: a generation's history, without its registration or purge.
REPLAYABLE: frozenset[type[Aggregate.Event]] = frozenset(
    {
        Certificate.PolicyReplaced,
        Certificate.OperationOpened,
        Certificate.KeyPairCreated,
        Certificate.CsrIssued,
        Certificate.IssuerOrderPlaced,
        Certificate.X509Merged,
        Certificate.VersionPromoted,
        Certificate.CancellationRequested,
        Certificate.OperationCancelled,
        Certificate.OperationFailed,
        Certificate.OperationDeleted,
        Certificate.CertificateImported,
        Certificate.AttributesUpdated,
        Certificate.Deleted,
        Certificate.Recovered,
        Certificate.Restored,
    }
)
