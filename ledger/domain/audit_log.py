"""The AuditLog aggregate: the identity and signing key of the ledger's Merkle log."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.certificate import LedgerEvent
from ledger.domain.context import Ctx

AUDIT_LOG_ID: UUID = uuid5(NAMESPACE_URL, "certledger:audit-log")


class AuditLog(Aggregate):
    """One stream per ledger. The private key stays in custody; events hold the public key.

    A rotation replaces the signing key; the retired verifier keys are kept, oldest first,
    so checkpoints they signed still verify.
    """

    class LogKeyCreated(LedgerEvent, Aggregate.Created):
        origin: str
        key_id: str
        public_key: str
        verifier_key: str

    def __init__(self, origin: str, key_id: str, public_key: str, verifier_key: str) -> None:
        self.origin = origin
        self.key_id = key_id
        self.public_key = public_key
        self.verifier_key = verifier_key
        self.retired_keys: list[str] = []

    @staticmethod
    def create_id(origin: str, key_id: str, public_key: str, verifier_key: str) -> UUID:
        return AUDIT_LOG_ID

    @classmethod
    def create(
        cls, ctx: Ctx, *, origin: str, key_id: str, public_key: str, verifier_key: str
    ) -> AuditLog:
        """`key_id` is the custody reference; `public_key` the base64 raw Ed25519 key."""
        return cls._create(
            cls.LogKeyCreated,
            origin=origin,
            key_id=key_id,
            public_key=public_key,
            verifier_key=verifier_key,
            actor=ctx.actor,
            request_id=ctx.request_id,
        )

    def rotate_key(self, ctx: Ctx, *, key_id: str, public_key: str, verifier_key: str) -> None:
        """Sign with a new key from now on (same origin); the current one is retired."""
        self.trigger_event(
            self.LogKeyRotated,
            **ctx.as_event_fields(),
            key_id=key_id,
            public_key=public_key,
            verifier_key=verifier_key,
            retired_key_id=self.key_id,
        )

    class LogKeyRotated(LedgerEvent):
        key_id: str
        public_key: str
        verifier_key: str
        retired_key_id: str

        def apply(self, aggregate: AuditLog) -> None:
            aggregate.retired_keys.append(aggregate.verifier_key)
            aggregate.key_id = self.key_id
            aggregate.public_key = self.public_key
            aggregate.verifier_key = self.verifier_key
