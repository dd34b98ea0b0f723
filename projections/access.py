"""Access grants: each principal's certificate permissions, and denied attempts."""

from __future__ import annotations

from typing import Any

from ledger.domain.access import PERMISSIONS
from projections.rows import Rows
from projections.view import View, at, on

T = "v_access"
DENIED = "v_access_denied"


class AccessView(View):
    name = "access"
    keys = {T: ("principal", "permission"), DENIED: ("position",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " principal TEXT NOT NULL, permission TEXT NOT NULL, PRIMARY KEY (principal, permission))",
        f"CREATE TABLE IF NOT EXISTS {DENIED} ("
        " position INTEGER PRIMARY KEY, at TEXT NOT NULL, principal TEXT NOT NULL,"
        " permission TEXT NOT NULL, target TEXT NOT NULL, request_id TEXT NOT NULL)",
    )

    @staticmethod
    def _grant(rows: Rows, principal: str, permissions: Any) -> None:
        for permission in permissions:
            rows.put(T, {"principal": principal, "permission": permission})

    @on("AccessControl.Bootstrapped")
    def bootstrapped(self, rows: Rows, e: Any) -> None:
        self._grant(rows, e.administrator, PERMISSIONS)

    @on("AccessControl.PermissionsGranted")
    def granted(self, rows: Rows, e: Any) -> None:
        self._grant(rows, e.principal, e.permissions)

    @on("AccessControl.PermissionsRevoked")
    def revoked(self, rows: Rows, e: Any) -> None:
        for permission in e.permissions:
            rows.delete(T, e.principal, permission)

    @on("AccessControl.AccessDenied")
    def denied(self, rows: Rows, e: Any) -> None:
        rows.put(
            DENIED,
            {
                "position": e.originator_version,
                "at": at(e),
                "principal": e.actor,
                "permission": e.permission,
                "target": e.target,
                "request_id": e.request_id,
            },
            new=True,
        )
