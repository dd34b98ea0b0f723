"""When a version's lifetime actions and notices fall due, and what the scheduler does then.

Pure functions over `LifetimeFacts`, built either from a Certificate aggregate (the worker,
which decides) or from a row of the lifetime view (the worker's index, and the plan).

Keys name what fired for a version, e.g. `AutoRenew:lifetime_percentage=80`,
`EmailContacts:days_before_expiry=30`, `NearExpiry:days_before_expiry=30`, `Expired:expired`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

AUTO_RENEW = "AutoRenew"
EMAIL_CONTACTS = "EmailContacts"
NEAR_EXPIRY = "NearExpiry"
EXPIRED = "Expired"

RENEW = "renew"
NOTIFY = "notify"
# A notice that fell due only after its version had expired: the Expired notice says it all.
SKIPPED = "skipped"

# "Look now": attention needed whatever the clock says (a renewal that ended unsuccessfully).
NOW = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ActionSpec:
    """One policy lifetime action: its type and its trigger (exactly one of the two)."""

    action: str
    lifetime_percentage: int | None = None
    days_before_expiry: int | None = None

    @property
    def trigger(self) -> str:
        if self.lifetime_percentage is not None:
            return f"lifetime_percentage={self.lifetime_percentage}"
        return f"days_before_expiry={self.days_before_expiry}"

    @property
    def key(self) -> str:
        return f"{self.action}:{self.trigger}"

    def due(self, nbf: datetime, exp: datetime) -> datetime:
        if self.lifetime_percentage is not None:
            return nbf + (exp - nbf) * self.lifetime_percentage / 100
        return exp - timedelta(days=self.days_before_expiry or 0)


def actions_from_policy(policy: dict[str, Any] | None) -> list[ActionSpec]:
    """The lifetime actions of a stored (already validated) Key Vault policy document."""
    found: list[ActionSpec] = []
    for item in (policy or {}).get("lifetime_actions") or []:
        trigger = item.get("trigger") or {}
        found.append(
            ActionSpec(
                action=str((item.get("action") or {}).get("action_type")),
                lifetime_percentage=trigger.get("lifetime_percentage"),
                days_before_expiry=trigger.get("days_before_expiry"),
            )
        )
    return found


def issuer_from_policy(policy: dict[str, Any] | None) -> str:
    return str(((policy or {}).get("issuer") or {}).get("name") or "Unknown")


@dataclass
class RenewalFacts:
    """The renewal of one version, once its AutoRenew fired."""

    attempts: int = 0
    operation: str | None = None  # the version the current attempt is creating
    retry_at: datetime | None = None
    gave_up: bool = False


@dataclass
class LifetimeFacts:
    """What the rules need to know about a certificate's current version."""

    name: str
    version: str
    nbf: datetime
    exp: datetime
    issuer: str  # the policy's issuer: Self, Unknown or an issuer object
    actions: list[ActionSpec]
    fired: set[str] = field(default_factory=set)
    op_version: str | None = None  # the operation in progress, if any
    renewal: RenewalFacts | None = None

    @property
    def near_fired(self) -> bool:
        return any(k.startswith(NEAR_EXPIRY + ":") for k in self.fired)

    @property
    def renewal_ended_unsuccessfully(self) -> bool:
        """The renewal's operation is over, and its version never became current."""
        r = self.renewal
        return r is not None and r.operation is not None and self.op_version != r.operation


@dataclass(frozen=True)
class Fire:
    """Record that `action` fired for the version, with its outcome."""

    action: str
    trigger: str
    due: datetime
    outcome: str

    @property
    def key(self) -> str:
        return f"{self.action}:{self.trigger}"


@dataclass(frozen=True)
class RetryRenewal:
    """Start renewal attempt number `attempt` (an earlier one failed)."""

    attempt: int
    due: datetime


@dataclass(frozen=True)
class CloseRenewal:
    """Record how the renewal's operation ended (the CA's error, or a cancellation)."""

    operation: str
    due: datetime


Step = Fire | RetryRenewal | CloseRenewal


def _outcome(facts: LifetimeFacts, action: str, when: datetime) -> str:
    if action == AUTO_RENEW and facts.issuer != "Unknown":
        return RENEW
    if action != EXPIRED and when >= facts.exp:
        return SKIPPED
    return NOTIFY


def near_expiry(near_days: int) -> ActionSpec | None:
    return ActionSpec(NEAR_EXPIRY, days_before_expiry=near_days) if near_days > 0 else None


def candidates(facts: LifetimeFacts, near_days: int) -> list[ActionSpec | None]:
    """Every trigger of the version not yet fired (None stands for the Expired notice)."""
    found: list[ActionSpec | None] = [a for a in facts.actions if a.key not in facts.fired]
    near = near_expiry(near_days)
    if near is not None and not facts.near_fired:
        found.append(near)
    if f"{EXPIRED}:expired" not in facts.fired:
        found.append(None)
    return found


def _due_of(facts: LifetimeFacts, spec: ActionSpec | None) -> datetime:
    return facts.exp if spec is None else spec.due(facts.nbf, facts.exp)


def steps_due(facts: LifetimeFacts, now: datetime, near_days: int) -> list[Step]:
    """What the scheduler must record now, in due order (at most one renewal start)."""
    steps: list[Step] = []
    r = facts.renewal
    if facts.renewal_ended_unsuccessfully:
        assert r is not None and r.operation is not None
        steps.append(CloseRenewal(r.operation, NOW))
    elif (
        r is not None
        and r.retry_at is not None
        and not r.gave_up
        and now >= r.retry_at
        and facts.op_version is None
    ):
        steps.append(RetryRenewal(r.attempts + 1, r.retry_at))
    for spec in candidates(facts, near_days):
        due = _due_of(facts, spec)
        if due > now:
            continue
        action = EXPIRED if spec is None else spec.action
        trigger = "expired" if spec is None else spec.trigger
        outcome = _outcome(facts, action, now)
        if outcome == RENEW and facts.op_version is not None:
            continue  # waits for the operation in progress to end
        steps.append(Fire(action, trigger, due, outcome))
    return sorted(steps, key=lambda s: s.due)


def attention(facts: LifetimeFacts) -> datetime | None:
    """The earliest moment the scheduler must look at the version again (near-expiry aside,
    which depends on configuration and is checked against the version's expiry)."""
    if facts.renewal_ended_unsuccessfully:
        return NOW
    moments: list[datetime] = []
    r = facts.renewal
    if r is not None and r.retry_at is not None and not r.gave_up and facts.op_version is None:
        moments.append(r.retry_at)
    for spec in candidates(facts, 0):
        if spec is not None and spec.action == AUTO_RENEW and facts.op_version is not None:
            continue  # looked at again when the operation ends
        moments.append(_due_of(facts, spec))
    return min(moments, default=None)


@dataclass(frozen=True)
class Planned:
    """One thing the scheduler will do, and when."""

    when: datetime
    name: str
    version: str
    action: str
    trigger: str
    outcome: str
    detail: str


def plan(
    facts: LifetimeFacts,
    now: datetime,
    until: datetime,
    near_days: int,
    renewal_attempts: int,
) -> list[Planned]:
    """What will happen to the version up to `until`, assuming nothing else changes.

    Overdue items (the worker has not run since they fell due) are listed at `now`.
    """
    out: list[Planned] = []
    r = facts.renewal
    if facts.renewal_ended_unsuccessfully:
        assert r is not None
        out.append(
            Planned(
                now,
                facts.name,
                facts.version,
                "Renewal",
                f"attempt {r.attempts}",
                "record",
                "record how the renewal attempt ended",
            )
        )
    elif r is not None and r.retry_at is not None and not r.gave_up and r.retry_at <= until:
        out.append(
            Planned(
                max(now, r.retry_at),
                facts.name,
                facts.version,
                "Renewal",
                f"attempt {r.attempts + 1} of {renewal_attempts}",
                RENEW,
                f"retry the renewal through {facts.issuer}",
            )
        )
    for spec in candidates(facts, near_days):
        due = _due_of(facts, spec)
        if due > until:
            continue
        when = max(now, due)
        action = EXPIRED if spec is None else spec.action
        trigger = "expired" if spec is None else spec.trigger
        outcome = _outcome(facts, action, when)
        if outcome == RENEW:
            detail = f"renew through {facts.issuer}"
            if facts.op_version is not None:
                detail += " (after the operation in progress ends)"
        elif outcome == SKIPPED:
            detail = "skipped: the version will have expired"
        else:
            kind = "CertificateExpired" if action == EXPIRED else "CertificateNearExpiry"
            detail = f"notify {kind}"
            if action == AUTO_RENEW:
                detail += " (issuer Unknown cannot renew)"
        out.append(Planned(when, facts.name, facts.version, action, trigger, outcome, detail))
    return sorted(out, key=lambda p: (p.when, p.action))
