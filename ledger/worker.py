"""Drives pending operations forward, one saved step at a time, resumable after a crash.

Steps, each saved as its own events: key_pair, csr, order (`IssuerOrderPlaced`), certificate
(`X509Merged`), promoted (`VersionPromoted`); or cancelled / failed. A CA's certificate is
saved with its promotion, and one that answers at once (LocalCA) with its order too, in one
commit (separately when a crash test pauses between them). A restarted worker reads the
aggregate and takes the next step. Provider calls happen under a lease, so two workers never
talk to a CA about one operation at once, and providers keep orders in the order book keyed by
the operation's request id, so a step repeated after a crash never orders twice.
"""

from __future__ import annotations

import base64
import threading
import time
from datetime import timedelta
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from ledger.application import Ledger, x509_facts
from ledger.domain.certificate import Certificate, Operation, Version
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict
from ledger.domain.ids import issuer_id
from ledger.domain.issuer import Issuer
from ledger.leases import Leases
from ledger.lifetime.runner import LifetimeRunner
from ledger.pki import KeyMismatchError, load_certificates, order_chain, self_signed
from ledger.profile import ca_changes, profile_from_policy
from ledger.providers.base import OrderRequest, OrderStatus, ProviderError, order_key
from ledger.settings import WorkerSettings

WORKER = "certledger-worker"
CLOSING_STEPS = ("promoted", "failed", "cancelled")

_OPENING = {get_topic(Certificate.OperationOpened)}
_CLOSING = {
    get_topic(cls)
    for cls in (
        Certificate.VersionPromoted,
        Certificate.OperationFailed,
        Certificate.OperationCancelled,
        Certificate.OperationDeleted,
        Certificate.Purged,
    )
}


def lease_key(cert: Certificate, op: Operation) -> str:
    return f"{cert.id}/{op.version}"


class Worker:
    """Advances each operation one step at a time; every step is saved as events."""

    def __init__(
        self,
        ledger: Ledger,
        settings: WorkerSettings | None = None,
        *,
        poll_interval: float = 0.5,
        shard: tuple[int, int] = (0, 1),
        lifetime: bool = True,
        lifetime_every: float = 0.0,
    ) -> None:
        """`shard` (i, n): this worker takes the operations of certificates whose id is i
        modulo n, beside n - 1 others in the same process; `lifetime`: it also runs the
        lifetime duties (one worker per process is enough), at most once per
        `lifetime_every` seconds (a busy worker's rounds follow each other closely)."""
        self.ledger = ledger
        self.shard = shard
        self.lifetime_every = lifetime_every
        self._lifetime_due = 0.0  # monotonic
        self.settings = settings or ledger.settings.worker
        self.poll_interval = poll_interval
        self.leases = Leases(ledger.settings.database.connect(), ttl=self.settings.lease_seconds)
        self._position = 0
        self._open: set[UUID] = set()
        # An order's latest answer, when it arrived with the step that saved the order.
        self._statuses: dict[str, OrderStatus] = {}
        # When a pending order may be polled again (monotonic seconds).
        self._next_poll: dict[str, float] = {}
        # Lifetime actions (renewals, expiry notices) and notification delivery.
        self.lifetime = LifetimeRunner(ledger, self.leases, WORKER) if lifetime else None

    def close(self) -> None:
        if self.lifetime is not None:
            self.lifetime.close()
        self.leases.close()

    # -- discovery --------------------------------------------------------

    def discover(self) -> set[UUID]:
        """Certificates with an operation opened and not yet closed, from the event log."""
        while True:
            batch = self.ledger.recorder.select_notifications(start=self._position + 1, limit=1000)
            for n in batch:
                cert_id = UUID(str(n.originator_id))
                if n.topic in _OPENING:
                    self._open.add(cert_id)
                elif n.topic in _CLOSING:
                    self._open.discard(cert_id)
                self._position = n.id
            if len(batch) < 1000:
                index, count = self.shard
                return {c for c in self._open if c.int % count == index}

    def run_once(self) -> int:
        """One pass over all due work: advance every open operation as far as it goes now."""
        lifetime = self.lifetime if time.monotonic() >= self._lifetime_due else None
        if lifetime is not None:
            self._lifetime_due = time.monotonic() + self.lifetime_every
        progressed = lifetime.schedule() if lifetime is not None else 0
        for cert_id in self.discover():
            cert: Certificate = self.ledger.repository.get(cert_id)
            while self.advance(cert):
                progressed += 1
        return progressed + (lifetime.notify() if lifetime is not None else 0)

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(interval)

    def drive(
        self,
        name: str,
        timeout: float = 60.0,
        interval: float = 0.2,
        *,
        cert: Certificate | None = None,
    ) -> Certificate:
        """Run one certificate's operation until it needs nobody else (embedded --wait).

        `cert` may be the aggregate a command just saved, to spare reloading it.
        """
        deadline = time.monotonic() + timeout
        cert = cert or self.ledger.certificate(name)
        while True:
            op = cert.operation
            if op is None or not op.in_progress:
                return cert
            if op.issuer_name == "Unknown" and not op.cancellation_requested:
                return cert  # waits for the user's merge
            if not self.advance(cert):
                if time.monotonic() > deadline:
                    return cert
                time.sleep(self._wait_for(op, interval))
                cert = self.ledger.certificate(name)

    def _wait_for(self, op: Operation, interval: float) -> float:
        if op.retry_at is not None and not op.cancellation_requested:
            due = (op.retry_at - self.ledger.now()).total_seconds()
            return max(0.0, min(due, interval * 10))
        return interval

    # -- one step ---------------------------------------------------------

    def advance(self, cert: Certificate) -> bool:
        """Take and save the next step of `cert`'s operation; False when none can be taken now."""
        op = cert.operation
        if op is None or not op.in_progress or not op.due(self.ledger.now()):
            return False
        key = lease_key(cert, op)
        ctx = Ctx(WORKER, op.request_id)
        try:
            step = self._step(cert, op, cert.versions[op.version], ctx, key)
        except Conflict:
            # Another worker saved first: back off; the caller reloads the aggregate.
            self._statuses.pop(key, None)
            return False
        if step is None:
            return False
        if step in CLOSING_STEPS:
            self._statuses.pop(key, None)
            self._next_poll.pop(key, None)
            self.leases.release(key)
        self.ledger.pause(step)
        return True

    def _step(
        self, cert: Certificate, op: Operation, version: Version, ctx: Ctx, key: str
    ) -> str | None:
        if op.cancellation_requested:
            return self._cancel(cert, op, version, ctx, key)
        if version.key_id is None:
            writes = self.ledger.make_key_pair(ctx, cert)
            self.ledger.commit(cert, custody=writes)
            return "key_pair"
        if version.csr_der is None:
            self.ledger.issue_csr(ctx, cert)
            self.ledger.commit(cert)
            return "csr"
        if version.cert_der is not None:
            cert.promote(ctx)
            self.ledger.commit(cert)
            return "promoted"
        if op.issuer_name == "Self":
            self._self_sign(cert, version, ctx)
            self.ledger.commit(cert)
            return "promoted"
        if op.issuer_name == "Unknown":
            return None
        return self._order(cert, op, version, ctx, key)

    def _self_sign(self, cert: Certificate, version: Version, ctx: Ctx) -> None:
        # Nothing leaves the ledger: signing and promotion are saved together.
        assert version.key_id is not None
        policy = self.ledger.policy_of(cert)
        issued = self_signed(
            self.ledger.custody.signer(version.key_id),
            profile_from_policy(policy),
            now=self.ledger.now(),
        )
        cert.merge_x509(ctx, x509_facts(issued, []), source="self")
        cert.promote(ctx)

    def _issuer(self, name: str) -> Issuer | None:
        if name in ("Self", "Unknown") or not name:
            return None
        try:
            found: object = self.ledger.repository.get(issuer_id(name))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Issuer) and not found.deleted else None

    def _lease(self, cert: Certificate, key: str) -> bool:
        """Hold the operation's lease, on a fresh view of the aggregate."""
        if not self.leases.acquire(key):
            return False
        fresh: Certificate = self.ledger.repository.get(cert.id)
        if fresh.version != cert.version:
            raise Conflict("the operation moved on in another worker")
        return True

    def _cancel(
        self, cert: Certificate, op: Operation, version: Version, ctx: Ctx, key: str
    ) -> str | None:
        reason = "The operation was cancelled at the user's request."
        issuer = self._issuer(op.issuer_name)
        order_ref = version.order_ref
        if issuer is not None and order_ref is None:
            orders = self.ledger.providers.services.orders
            found = orders.find(issuer.name, order_key(op.request_id, op.version))
            order_ref = found[0] if found else None
        if issuer is not None and order_ref and version.cert_der is None:
            if not self._lease(cert, key):
                return None
            try:
                config = self.ledger.issuer_config(issuer)
                self.ledger.providers.get(issuer.provider).cancel(config, order_ref)
                reason += f" Order {order_ref} was cancelled at {issuer.provider}."
            except Exception as exc:
                reason += f" The CA did not confirm the cancellation of order {order_ref}: {exc}"
        cert.cancel(ctx, reason)
        self.ledger.commit(cert)
        return "cancelled"

    def _order(
        self, cert: Certificate, op: Operation, version: Version, ctx: Ctx, key: str
    ) -> str | None:
        issuer = self._issuer(op.issuer_name)
        if issuer is None or not issuer.enabled:
            cert.fail(ctx, "IssuerNotFound", f"issuer {op.issuer_name!r} is missing or disabled")
            self.ledger.commit(cert)
            return "failed"
        status = self._statuses.pop(key, None)
        if (
            status is None
            and version.order_ref is not None
            and time.monotonic() < self._next_poll.get(key, 0.0)
        ):
            return None  # polled a moment ago
        provider = self.ledger.providers.get(issuer.provider)
        # An offline CA (LocalCA) signs here, idempotently through the order book: two
        # workers racing sign the same certificate and only one saves it; no lease needed.
        if not getattr(provider, "offline", False) and not self._lease(cert, key):
            return None
        step = "order" if version.order_ref is None else "poll"
        try:
            config = self.ledger.issuer_config(issuer)
            if version.order_ref is None:
                assert version.csr_der is not None
                csr = x509.load_der_x509_csr(base64.b64decode(version.csr_der))
                status = provider.place_order(
                    OrderRequest(
                        issuer=config,
                        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
                        profile=profile_from_policy(self.ledger.policy_of(cert)),
                        request_id=op.request_id,
                        version=op.version,
                    )
                )
                cert.place_order(
                    ctx,
                    issuer_name=issuer.name,
                    provider=issuer.provider,
                    order_ref=status.order_ref,
                )
                if status.state == "pending" or self.ledger.stepwise_issue:
                    self.ledger.commit(cert)
                    self._statuses[key] = status
                    return "order"
                # Answered at once: settled below, saved with the order in one commit.
            elif status is None:
                status = provider.poll(config, version.order_ref)
        except Conflict:
            raise
        except ProviderError as exc:
            return self._provider_error(cert, op, ctx, step, exc.code, exc.message, exc.retryable)
        except Exception as exc:  # a CA that cannot be reached: retried, then the op fails
            message = f"{issuer.provider}: {exc}"
            return self._provider_error(cert, op, ctx, step, "ProviderError", message, True)
        return self._settle(cert, version, status, ctx, key)

    def _provider_error(
        self,
        cert: Certificate,
        op: Operation,
        ctx: Ctx,
        step: str,
        code: str,
        message: str,
        retryable: bool,
    ) -> str:
        attempt = op.attempts + 1
        if retryable and attempt < self.settings.max_attempts:
            retry_at = self.ledger.now() + timedelta(seconds=self.settings.delay(attempt))
            cert.schedule_retry(ctx, step=step, code=code, message=message, retry_at=retry_at)
            self.ledger.commit(cert)
            return "retry"
        if attempt > 1:
            message = f"{message} (gave up after {attempt} attempts)"
        cert.fail(ctx, code, message)
        self.ledger.commit(cert)
        return "failed"

    def _settle(
        self, cert: Certificate, version: Version, status: OrderStatus, ctx: Ctx, key: str
    ) -> str | None:
        if status.state == "pending":
            wait = status.retry_after if status.retry_after is not None else self.poll_interval
            self._next_poll[key] = time.monotonic() + min(max(wait, 0.0), 60.0)
            return None
        if status.state in ("failed", "cancelled"):
            code = status.error_code or ("Cancelled" if status.state == "cancelled" else "Failed")
            cert.fail(
                ctx, code, status.error_message or f"the CA reported the order {status.state}"
            )
            self.ledger.commit(cert)
            return "failed"
        assert version.public_key_pem is not None
        public = serialization.load_pem_public_key(version.public_key_pem.encode())
        try:
            leaf, chain = order_chain(load_certificates(status.certificates_pem or ""), public)
        except (KeyMismatchError, ValueError) as exc:
            cert.fail(ctx, "InvalidCertificate", f"the CA returned an unusable certificate: {exc}")
            self.ledger.commit(cert)
            return "failed"
        changes = ca_changes(profile_from_policy(self.ledger.policy_of(cert)), leaf)
        cert.merge_x509(ctx, x509_facts(leaf, chain), source="provider", ca_changes=changes)
        if not self.ledger.stepwise_issue:  # the certificate and its promotion: one commit
            cert.promote(ctx)
            self.ledger.commit(cert)
            return "promoted"
        self.ledger.commit(cert)
        return "certificate"
