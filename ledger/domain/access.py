"""Who may do what: Key Vault's certificate permissions, granted by events."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.certificate import LedgerEvent
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Forbidden

PERMISSIONS = (
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "purge",
    "backup",
    "restore",
    "managecontacts",
    "manageissuers",
    "getissuers",
    "listissuers",
    "setissuers",
    "deleteissuers",
)

ACCESS_ID: UUID = uuid5(NAMESPACE_URL, "certledger:access-control")


def check_permissions(permissions: list[str]) -> list[str]:
    unknown = [p for p in permissions if p.lower() not in PERMISSIONS]
    if unknown:
        raise BadParameter(
            f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}"
        )
    return sorted({p.lower() for p in permissions})


class AccessControl(Aggregate):
    """The ledger's access policy; a single stream for the whole ledger."""

    class Bootstrapped(LedgerEvent, Aggregate.Created):
        administrator: str

    def __init__(self, administrator: str) -> None:
        self.administrators = {administrator}
        self.grants: dict[str, set[str]] = {administrator: set(PERMISSIONS)}

    @staticmethod
    def create_id(administrator: str) -> UUID:
        return ACCESS_ID

    @classmethod
    def bootstrap(cls, ctx: Ctx, administrator: str) -> AccessControl:
        return cls._create(
            cls.Bootstrapped,
            administrator=administrator,
            actor=ctx.actor,
            request_id=ctx.request_id,
        )

    def allows(self, principal: str, permission: str) -> bool:
        return permission in self.grants.get(principal, set())

    def _require_admin(self, ctx: Ctx) -> None:
        if ctx.actor not in self.administrators:
            raise Forbidden(f"principal {ctx.actor!r} may not change access grants")

    def grant(self, ctx: Ctx, principal: str, permissions: list[str]) -> None:
        self._require_admin(ctx)
        perms = check_permissions(permissions)
        self.trigger_event(
            self.PermissionsGranted, **ctx.as_event_fields(), principal=principal, permissions=perms
        )

    def revoke(self, ctx: Ctx, principal: str, permissions: list[str]) -> None:
        self._require_admin(ctx)
        perms = check_permissions(permissions)
        self.trigger_event(
            self.PermissionsRevoked, **ctx.as_event_fields(), principal=principal, permissions=perms
        )

    def record_denial(self, ctx: Ctx, permission: str, target: str) -> None:
        self.trigger_event(
            self.AccessDenied, **ctx.as_event_fields(), permission=permission, target=target
        )

    class PermissionsGranted(LedgerEvent):
        principal: str
        permissions: list[str]

        def apply(self, aggregate: AccessControl) -> None:
            aggregate.grants.setdefault(self.principal, set()).update(self.permissions)

    class PermissionsRevoked(LedgerEvent):
        principal: str
        permissions: list[str]

        def apply(self, aggregate: AccessControl) -> None:
            aggregate.grants.get(self.principal, set()).difference_update(self.permissions)

    class AccessDenied(LedgerEvent):
        permission: str
        target: str

        def apply(self, aggregate: AccessControl) -> None:
            pass
