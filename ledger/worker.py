"""Drives pending operations forward: self-signing, provider orders, promotion."""

from __future__ import annotations

import base64
import threading
import time
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eventsourcing.utils import get_topic

from ledger.application import Ledger, x509_facts
from ledger.domain.certificate import Certificate, Operation, Version
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict
from ledger.domain.ids import issuer_id
from ledger.domain.issuer import Issuer
from ledger.pki import KeyMismatchError, load_certificates, order_chain, self_signed
from ledger.profile import profile_from_policy
from ledger.providers.base import OrderRequest, OrderStatus

WORKER = "certledger-worker"

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


class Worker:
    """Advances each operation one step at a time; every step is saved as events."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._position = 0
        self._open: set[UUID] = set()

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
                return set(self._open)

    def run_once(self) -> int:
        """Advance every open operation by as many steps as it can take now."""
        progressed = 0
        for cert_id in self.discover():
            cert: Certificate = self.ledger.repository.get(cert_id)
            while self.advance(cert):
                progressed += 1
        return progressed

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
                time.sleep(interval)
                cert = self.ledger.certificate(name)

    # -- one step ---------------------------------------------------------

    def advance(self, cert: Certificate) -> bool:
        """Take the next step of `cert`'s operation; False when there is none to take now."""
        op = cert.operation
        if op is None or not op.in_progress:
            return False
        ctx = Ctx(WORKER, op.request_id)
        version = cert.versions[op.version]
        try:
            if op.cancellation_requested:
                self._cancel(cert, op, version, ctx)
            elif op.issuer_name == "Self":
                self._self_sign(cert, version, ctx)
            elif op.issuer_name == "Unknown" or not self._order(cert, op, version, ctx):
                return False
            self.ledger.commit(cert)
        except Conflict:
            return False
        return True

    def _cancel(self, cert: Certificate, op: Operation, version: Version, ctx: Ctx) -> None:
        issuer = self._issuer(op.issuer_name)
        if version.order_ref and issuer is not None:
            config = self.ledger.issuer_config(issuer)
            self.ledger.providers.get(issuer.provider).cancel(config, version.order_ref)
        cert.cancel(ctx, "The operation was cancelled at the user's request.")

    def _self_sign(self, cert: Certificate, version: Version, ctx: Ctx) -> None:
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
        if name in ("Self", "Unknown"):
            return None
        found = self.ledger.repository.get(issuer_id(name)) if name else None
        return found if isinstance(found, Issuer) and not found.deleted else None

    def _order(self, cert: Certificate, op: Operation, version: Version, ctx: Ctx) -> bool:
        issuer = self._issuer(op.issuer_name)
        if issuer is None or not issuer.enabled:
            cert.fail(ctx, "IssuerNotFound", f"issuer {op.issuer_name!r} is missing or disabled")
            return True
        config = self.ledger.issuer_config(issuer)
        provider = self.ledger.providers.get(issuer.provider)
        try:
            if version.order_ref is None:
                assert version.csr_der is not None
                csr = x509.load_der_x509_csr(base64.b64decode(version.csr_der))
                status = provider.place_order(
                    OrderRequest(
                        issuer=config,
                        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
                        profile=profile_from_policy(self.ledger.policy_of(cert)),
                        request_id=op.request_id,
                    )
                )
                cert.place_order(
                    ctx,
                    issuer_name=issuer.name,
                    provider=issuer.provider,
                    order_ref=status.order_ref,
                )
            else:
                status = provider.poll(config, version.order_ref)
        except Exception as exc:  # a provider's failure fails the operation, not the worker
            cert.fail(ctx, "ProviderError", f"{issuer.provider}: {exc}")
            return True
        return self._settle(cert, version, status, ctx) or version.order_ref is None

    def _settle(self, cert: Certificate, version: Version, status: OrderStatus, ctx: Ctx) -> bool:
        if status.state == "pending":
            return False
        if status.state in ("failed", "cancelled"):
            code = status.error_code or ("Cancelled" if status.state == "cancelled" else "Failed")
            cert.fail(
                ctx, code, status.error_message or f"the CA reported the order {status.state}"
            )
            return True
        assert version.public_key_pem is not None
        public = serialization.load_pem_public_key(version.public_key_pem.encode())
        try:
            leaf, chain = order_chain(load_certificates(status.certificates_pem or ""), public)
        except (KeyMismatchError, ValueError) as exc:
            cert.fail(ctx, "InvalidCertificate", f"the CA returned an unusable certificate: {exc}")
            return True
        cert.merge_x509(ctx, x509_facts(leaf, chain), source="provider")
        cert.promote(ctx)
        return True
