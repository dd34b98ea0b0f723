"""The current state of each certificate name: its current version, policy and state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.database import Cursor
from projections.view import View, at, cid, insert, iso, js, on, update

T = "v_current"
S = "v_current_staged"
STAGED = ("issuer", "x5t", "serial", "nbf", "exp", "enabled", "tags")


class CurrentView(View):
    """One row per name; a version's facts wait in a staging table until promotion."""

    name = "current"
    tables = (T, S)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, name TEXT NOT NULL, generation INTEGER NOT NULL,"
        " state TEXT NOT NULL, version TEXT, issuer TEXT, x5t TEXT, serial TEXT, nbf TEXT,"
        " exp TEXT, enabled INTEGER, tags TEXT, policy TEXT, policy_hash TEXT,"
        " created TEXT NOT NULL, updated TEXT NOT NULL, deleted_on TEXT, scheduled_purge TEXT)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_state ON {T} (state, name)",
        f"CREATE TABLE IF NOT EXISTS {S} ("
        " cert_id TEXT NOT NULL, version TEXT NOT NULL, issuer TEXT, x5t TEXT, serial TEXT,"
        " nbf TEXT, exp TEXT, enabled INTEGER, tags TEXT, PRIMARY KEY (cert_id, version))",
    )

    @on("Certificate.Registered")
    def registered(self, cur: Cursor, e: Any) -> None:
        when = at(e)
        insert(
            cur,
            T,
            {
                "cert_id": cid(e),
                "name": e.name,
                "generation": 1,
                "state": "new",
                "created": when,
                "updated": when,
            },
        )

    @on("Certificate.PolicyReplaced")
    def policy(self, cur: Cursor, e: Any) -> None:
        update(
            cur,
            T,
            {"cert_id": cid(e)},
            {"policy": js(e.policy), "policy_hash": e.fingerprint, "updated": at(e)},
        )

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            S,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": e.issuer_name,
                "enabled": 1,
                "tags": js(e.tags),
            },
        )
        cur.execute(
            f"UPDATE {T} SET state = 'pending' WHERE cert_id = ? AND state IN ('new', 'purged')",
            [cid(e)],
        )

    @on("Certificate.X509Merged")
    def merged(self, cur: Cursor, e: Any) -> None:
        update(
            cur,
            S,
            {"cert_id": cid(e), "version": e.version},
            {"x5t": e.x5t, "serial": e.serial, "nbf": iso(e.not_before), "exp": iso(e.not_after)},
        )

    @on("Certificate.CertificateImported")
    def imported(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
            S,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": "Unknown",
                "x5t": e.x5t,
                "serial": e.serial,
                "nbf": iso(e.not_before),
                "exp": iso(e.not_after),
                "enabled": 1,
                "tags": js({}),
            },
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, cur: Cursor, e: Any) -> None:
        rows = cur.execute(
            f"SELECT {', '.join(STAGED)} FROM {S} WHERE cert_id = ? AND version = ?",
            [cid(e), e.version],
        )
        values = dict(zip(STAGED, rows[0], strict=True))
        values.update(version=e.version, state="active", updated=at(e))
        update(cur, T, {"cert_id": cid(e)}, values)
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ? AND version = ?", [cid(e), e.version])

    @on("Certificate.AttributesUpdated")
    def attributes(self, cur: Cursor, e: Any) -> None:
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        update(cur, T, {"cert_id": cid(e), "version": e.version}, values)

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ? AND version = ?", [cid(e), e.version])
        cur.execute(
            f"UPDATE {T} SET state = 'new' WHERE cert_id = ? AND state = 'pending'", [cid(e)]
        )

    @on("Certificate.Deleted")
    def deleted(self, cur: Cursor, e: Any) -> None:
        update(
            cur,
            T,
            {"cert_id": cid(e)},
            {
                "state": "deleted",
                "deleted_on": at(e),
                "scheduled_purge": iso(e.timestamp + timedelta(days=e.recoverable_days)),
            },
        )

    @on("Certificate.Recovered")
    def recovered(self, cur: Cursor, e: Any) -> None:
        cur.execute(
            f"UPDATE {T} SET state = CASE WHEN version IS NULL THEN 'pending' ELSE 'active' END,"
            " deleted_on = NULL, scheduled_purge = NULL WHERE cert_id = ?",
            [cid(e)],
        )

    @on("Certificate.Purged")
    def purged(self, cur: Cursor, e: Any) -> None:
        values: dict[str, Any] = dict.fromkeys(STAGED)
        values.update(
            state="purged",
            version=None,
            policy=None,
            policy_hash=None,
            deleted_on=None,
            scheduled_purge=None,
            generation=e.generation + 1,
            updated=at(e),
        )
        update(cur, T, {"cert_id": cid(e)}, values)
        cur.execute(f"DELETE FROM {S} WHERE cert_id = ?", [cid(e)])
