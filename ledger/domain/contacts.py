"""Certificate contacts: who is told about certificate lifecycle events."""

from __future__ import annotations

import re
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.certificate import LedgerEvent
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter

CONTACTS_ID: UUID = uuid5(NAMESPACE_URL, "certledger:contacts")
EMAIL_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
FIELDS = ("email", "name", "phone")


def check_contacts(contacts: Any) -> list[dict[str, str]]:
    """Key Vault's contact list: each with a valid email, optionally name and phone."""
    if not isinstance(contacts, list) or not contacts:
        raise BadParameter("contacts: a non-empty list of {email, name, phone} is required")
    checked = []
    for i, contact in enumerate(contacts):
        if not isinstance(contact, dict):
            raise BadParameter(f"contacts[{i}]: must be an object")
        unknown = set(contact) - set(FIELDS)
        if unknown:
            raise BadParameter(f"contacts[{i}]: unknown field(s) {', '.join(sorted(unknown))}")
        email = contact.get("email")
        if not isinstance(email, str) or not EMAIL_RE.match(email):
            raise BadParameter(f"contacts[{i}].email: {email!r} is not an email address")
        entry = {"email": email}
        for key in ("name", "phone"):
            value = contact.get(key)
            if value is not None:
                if not isinstance(value, str) or len(value) > 256:
                    raise BadParameter(f"contacts[{i}].{key}: must be a string of 256 or fewer")
                entry[key] = value
        checked.append(entry)
    return checked


class Contacts(Aggregate):
    """The ledger's certificate contacts; one stream for the whole ledger."""

    class Started(LedgerEvent, Aggregate.Created):
        pass

    def __init__(self) -> None:
        self.contacts: list[dict[str, str]] = []

    @staticmethod
    def create_id() -> UUID:
        return CONTACTS_ID

    @classmethod
    def start(cls, ctx: Ctx) -> Contacts:
        return cls._create(cls.Started, actor=ctx.actor, request_id=ctx.request_id)

    def replace(self, ctx: Ctx, contacts: list[dict[str, str]]) -> None:
        self.trigger_event(self.ContactsSet, **ctx.as_event_fields(), contacts=contacts)

    def delete(self, ctx: Ctx) -> None:
        self.trigger_event(self.ContactsDeleted, **ctx.as_event_fields())

    class ContactsSet(LedgerEvent):
        contacts: list[dict[str, str]]

        def apply(self, aggregate: Contacts) -> None:
            aggregate.contacts = [dict(c) for c in self.contacts]

    class ContactsDeleted(LedgerEvent):
        def apply(self, aggregate: Contacts) -> None:
            aggregate.contacts = []
