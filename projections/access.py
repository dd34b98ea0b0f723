"""Access grants: each principal's certificate permissions, and denied attempts."""

from __future__ import annotations

from typing import Any

from ledger.database import Cursor
from ledger.domain.access import PERMISSIONS
from projections.view import View, at, insert, on

T = "v_access"
DENIED = "v_access_denied"


class AccessView(View):
    name = "access"
    tables = (T, DENIED)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " principal TEXT NOT NULL, permission TEXT NOT NULL, PRIMARY KEY (principal, permission))",
        f"CREATE TABLE IF NOT EXISTS {DENIED} ("
        " position INTEGER PRIMARY KEY, at TEXT NOT NULL, principal TEXT NOT NULL,"
        " permission TEXT NOT NULL, target TEXT NOT NULL, request_id TEXT NOT NULL)",
    )

    def _grant(self, cur: Cursor, principal: str, permissions: Any) -> None:
        cur.executemany(
            f"INSERT INTO {T} (principal, permission) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(principal, p) for p in permissions],
        )

    @on("AccessControl.Bootstrapped")
    def bootstrapped(self, cur: Cursor, e: Any) -> None:
        self._grant(cur, e.administrator, PERMISSIONS)

    @on("AccessControl.PermissionsGranted")
    def granted(self, cur: Cursor, e: Any) -> None:
        self._grant(cur, e.principal, e.permissions)

    @on("AccessControl.PermissionsRevoked")
    def revoked(self, cur: Cursor, e: Any) -> None:
        cur.executemany(
            f"DELETE FROM {T} WHERE principal = ? AND permission = ?",
            [(e.principal, p) for p in e.permissions],
        )

    @on("AccessControl.AccessDenied")
    def denied(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            DENIED,
            {
                "position": e.originator_version,
                "at": at(e),
                "principal": e.actor,
                "permission": e.permission,
                "target": e.target,
                "request_id": e.request_id,
            },
        )
