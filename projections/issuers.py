"""Issuer objects, and the certificate contacts."""

from __future__ import annotations

from typing import Any

from ledger.database import Cursor
from projections.view import View, at, cid, insert, js, on, update

T = "v_issuers"
C = "v_contacts"


class IssuersView(View):
    name = "issuers"
    tables = (T,)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " issuer_id TEXT PRIMARY KEY, name TEXT NOT NULL, provider TEXT, account_id TEXT,"
        " org_id TEXT, admin_contacts TEXT, enabled INTEGER, deleted INTEGER NOT NULL,"
        " created TEXT NOT NULL, updated TEXT NOT NULL)",
    )

    @on("Issuer.Registered")
    def registered(self, cur: Cursor, e: Any) -> None:
        when = at(e)
        insert(
            cur,
            T,
            {"issuer_id": cid(e), "name": e.name, "deleted": 1, "created": when, "updated": when},
        )

    @on("Issuer.Configured")
    def configured(self, cur: Cursor, e: Any) -> None:
        update(
            cur,
            T,
            {"issuer_id": cid(e)},
            {
                "provider": e.provider,
                "account_id": e.account_id,
                "org_id": e.org_id,
                "admin_contacts": js(list(e.admin_contacts)),
                "enabled": int(e.enabled),
                "deleted": 0,
                "updated": at(e),
            },
        )

    @on("Issuer.IssuerDeleted")
    def deleted(self, cur: Cursor, e: Any) -> None:
        update(cur, T, {"issuer_id": cid(e)}, {"deleted": 1, "updated": at(e)})


class ContactsView(View):
    name = "contacts"
    tables = (C,)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {C} ("
        " position INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, phone TEXT)",
    )

    @on("Contacts.ContactsSet")
    def replaced(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {C}")
        for i, c in enumerate(e.contacts):
            insert(
                cur,
                C,
                {
                    "position": i,
                    "email": c["email"],
                    "name": c.get("name"),
                    "phone": c.get("phone"),
                },
            )

    @on("Contacts.ContactsDeleted")
    def deleted(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {C}")
