"""The current state of each certificate name: its current version, policy and state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, iso, iso_of, js, js_of, on, staged

T = "v_current"
S = "v_current_staged"
STAGED = ("issuer", "x5t", "serial", "nbf", "exp", "enabled", "tags")


class CurrentView(View):
    """One row per name; a version's facts wait in a staging table until promotion."""

    name = "current"
    keys = {T: ("cert_id",), S: ("cert_id", "version")}
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
    def registered(self, rows: Rows, e: Any) -> None:
        when = at(e)
        rows.put(
            T,
            {
                "cert_id": cid(e),
                "name": e.name,
                "generation": 1,
                "state": "new",
                "created": when,
                "updated": when,
            },
            new=True,
        )

    @on("Certificate.PolicyReplaced")
    def policy(self, rows: Rows, e: Any) -> None:
        policy = js_of(e, "policy")
        rows.patch(T, (cid(e),), policy=policy, policy_hash=e.fingerprint, updated=at(e))

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        version = {"cert_id": cid(e), "version": e.version, "issuer": e.issuer_name}
        rows.put(S, {**version, "enabled": 1, "tags": js(e.tags)}, new=True)
        row = rows.get(T, cid(e))
        if row is not None and row["state"] in ("new", "purged"):
            rows.patch(T, (cid(e),), state="pending")

    @on("Certificate.X509Merged")
    def merged(self, rows: Rows, e: Any) -> None:
        rows.patch(
            S,
            (cid(e), e.version),
            x5t=e.x5t,
            serial=e.serial,
            nbf=iso_of(e, "not_before"),
            exp=iso_of(e, "not_after"),
        )

    @on("Certificate.CertificateImported")
    def imported(self, rows: Rows, e: Any) -> None:
        rows.put(
            S,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": "Unknown",
                "x5t": e.x5t,
                "serial": e.serial,
                "nbf": iso_of(e, "not_before"),
                "exp": iso_of(e, "not_after"),
                "enabled": 1,
                "tags": "{}",
            },
            new=True,
        )

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        facts = staged(rows, S, e)
        values = {k: facts[k] for k in STAGED}
        rows.patch(T, (cid(e),), **values, version=e.version, state="active", updated=at(e))
        rows.delete(S, cid(e), e.version)

    @on("Certificate.AttributesUpdated")
    def attributes(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e))
        if row is None or row["version"] != e.version:
            return
        values: dict[str, Any] = {"updated": at(e)}
        if e.enabled is not None:
            values["enabled"] = int(e.enabled)
        if e.tags is not None:
            values["tags"] = js(e.tags)
        rows.patch(T, (cid(e),), **values)

    @on("Certificate.OperationCancelled", "Certificate.OperationFailed")
    def abandoned(self, rows: Rows, e: Any) -> None:
        rows.delete(S, cid(e), e.version)
        row = rows.get(T, cid(e))
        if row is not None and row["state"] == "pending":
            rows.patch(T, (cid(e),), state="new")

    @on("Certificate.Deleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        rows.patch(
            T,
            (cid(e),),
            state="deleted",
            deleted_on=at(e),
            scheduled_purge=iso(e.timestamp + timedelta(days=e.recoverable_days)),
        )

    @on("Certificate.Recovered")
    def recovered(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e))
        if row is not None:
            state = "pending" if row["version"] is None else "active"
            rows.patch(T, (cid(e),), state=state, deleted_on=None, scheduled_purge=None)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
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
        rows.patch(T, (cid(e),), **values)
        rows.delete_where(S, cid(e))
