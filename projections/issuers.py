"""Issuer objects, and the certificate contacts."""

from __future__ import annotations

from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, js, on

T = "v_issuers"
C = "v_contacts"


class IssuersView(View):
    name = "issuers"
    keys = {T: ("issuer_id",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " issuer_id TEXT PRIMARY KEY, name TEXT NOT NULL, provider TEXT, account_id TEXT,"
        " org_id TEXT, admin_contacts TEXT, enabled INTEGER, deleted INTEGER NOT NULL,"
        " created TEXT NOT NULL, updated TEXT NOT NULL)",
    )

    @on("Issuer.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        when = at(e)
        rows.put(
            T,
            {"issuer_id": cid(e), "name": e.name, "deleted": 1, "created": when, "updated": when},
            new=True,
        )

    @on("Issuer.Configured")
    def configured(self, rows: Rows, e: Any) -> None:
        rows.patch(
            T,
            (cid(e),),
            provider=e.provider,
            account_id=e.account_id,
            org_id=e.org_id,
            admin_contacts=js(list(e.admin_contacts)),
            enabled=int(e.enabled),
            deleted=0,
            updated=at(e),
        )

    @on("Issuer.IssuerDeleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        rows.patch(T, (cid(e),), deleted=1, updated=at(e))


class ContactsView(View):
    name = "contacts"
    keys = {C: ("position",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {C} ("
        " position INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, phone TEXT)",
    )

    @on("Contacts.ContactsSet")
    def replaced(self, rows: Rows, e: Any) -> None:
        rows.delete_where(C)
        for i, c in enumerate(e.contacts):
            rows.put(
                C,
                {
                    "position": i,
                    "email": c["email"],
                    "name": c.get("name"),
                    "phone": c.get("phone"),
                },
            )

    @on("Contacts.ContactsDeleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        rows.delete_where(C)
