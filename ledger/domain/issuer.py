"""The Issuer aggregate: Key Vault's CertificateIssuer resource."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.certificate import LedgerEvent
from ledger.domain.context import Ctx
from ledger.domain.errors import IssuerNotFound
from ledger.domain.ids import check_name, issuer_id

RESERVED_ISSUERS = ("self", "unknown")


class Issuer(Aggregate):
    """A named issuer: which provider to order from, and with which account."""

    class Registered(LedgerEvent, Aggregate.Created):
        name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self.provider = ""
        self.account_id: str | None = None
        self.credential_ref: str | None = None
        self.org_id: str | None = None
        self.admin_contacts: list[dict[str, str]] = []
        self.enabled = True
        self.provider_state: dict[str, Any] = {}
        self.deleted = True

    @staticmethod
    def create_id(name: str) -> UUID:
        return issuer_id(name)

    @classmethod
    def register(cls, ctx: Ctx, name: str) -> Issuer:
        check_name(name, "issuer")
        return cls._create(cls.Registered, name=name, actor=ctx.actor, request_id=ctx.request_id)

    def configure(
        self,
        ctx: Ctx,
        *,
        provider: str,
        account_id: str | None,
        credential_ref: str | None,
        org_id: str | None,
        admin_contacts: list[dict[str, str]],
        enabled: bool,
        provider_state: dict[str, Any],
    ) -> None:
        self.trigger_event(
            self.Configured,
            **ctx.as_event_fields(),
            provider=provider,
            account_id=account_id,
            credential_ref=credential_ref,
            org_id=org_id,
            admin_contacts=admin_contacts,
            enabled=enabled,
            provider_state=provider_state,
        )

    def delete(self, ctx: Ctx) -> None:
        if self.deleted:
            raise IssuerNotFound(f"issuer {self.name!r} not found")
        self.trigger_event(self.IssuerDeleted, **ctx.as_event_fields())

    class Configured(LedgerEvent):
        provider: str
        account_id: str | None
        credential_ref: str | None
        org_id: str | None
        admin_contacts: list[dict[str, str]]
        enabled: bool
        provider_state: dict[str, Any]

        def apply(self, aggregate: Issuer) -> None:
            aggregate.provider = self.provider
            aggregate.account_id = self.account_id
            aggregate.credential_ref = self.credential_ref
            aggregate.org_id = self.org_id
            aggregate.admin_contacts = [dict(c) for c in self.admin_contacts]
            aggregate.enabled = self.enabled
            aggregate.provider_state = dict(self.provider_state)
            aggregate.deleted = False

    class IssuerDeleted(LedgerEvent):
        def apply(self, aggregate: Issuer) -> None:
            aggregate.deleted = True
