"""Lifetime: each certificate's current version, its lifetime actions and what has fired.

The worker reads it to find the certificates that need attention now (`due`, and the
expiry for the configurable near-expiry notice); `certledger lifetime plan` reads it to say
what will happen and when. The decisions themselves are taken on the aggregate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.database import Db
from ledger.lifetime.rules import (
    NEAR_EXPIRY,
    ActionSpec,
    LifetimeFacts,
    RenewalFacts,
    actions_from_policy,
    attention,
    issuer_from_policy,
)
from projections.rows import Row, Rows
from projections.view import View, cid, iso, iso_of, js, loads, on

T = "v_lifetime"
COLUMNS = (
    "cert_id",
    "name",
    "issuer",
    "actions",
    "version",
    "nbf",
    "exp",
    "fired",
    "near_fired",
    "op_version",
    "pending",
    "renewal",
    "deleted",
    "due",
)


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


def facts_of(row: dict[str, Any]) -> LifetimeFacts | None:
    """The rules' facts for a row; None while the certificate has no live current version."""
    if row["version"] is None or row["deleted"]:
        return None
    nbf, exp = _time(row["nbf"]), _time(row["exp"])
    if nbf is None or exp is None:
        return None
    renewal = None
    if row["renewal"]:
        r = loads(row["renewal"])
        renewal = RenewalFacts(
            attempts=int(r["attempts"]),
            operation=r["operation"],
            retry_at=_time(r["retry_at"]),
            gave_up=bool(r["gave_up"]),
        )
    return LifetimeFacts(
        name=str(row["name"]),
        version=str(row["version"]),
        nbf=nbf,
        exp=exp,
        issuer=str(row["issuer"]),
        actions=[ActionSpec(**a) for a in loads(row["actions"])],
        fired=set(loads(row["fired"])),
        op_version=row["op_version"],
        renewal=renewal,
    )


def _set_due(row: Row) -> None:
    facts = facts_of(row)
    row["due"] = iso(attention(facts) if facts is not None else None)


class LifetimeView(View):
    name = "lifetime"
    keys = {T: ("cert_id",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, name TEXT NOT NULL, issuer TEXT NOT NULL,"
        " actions TEXT NOT NULL, version TEXT, nbf TEXT, exp TEXT, fired TEXT NOT NULL,"
        " near_fired INTEGER NOT NULL, op_version TEXT, pending TEXT NOT NULL, renewal TEXT,"
        " deleted INTEGER NOT NULL, due TEXT)",
        f"CREATE INDEX IF NOT EXISTS {T}_due ON {T} (due)",
        f"CREATE INDEX IF NOT EXISTS {T}_exp ON {T} (exp)",
    )

    def __init__(self, *, suffix: str = "", track: str | None = None) -> None:
        super().__init__(suffix=suffix, track=track)
        self.rows.prepare[T] = _set_due

    @staticmethod
    def _row(rows: Rows, e: Any) -> Row | None:
        """The stored row (read it; change it through `_change`)."""
        return rows.get(T, cid(e))

    @staticmethod
    def _change(rows: Rows, e: Any, **values: Any) -> Row | None:
        return rows.patch(T, (cid(e),), **values)

    @on("Certificate.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        rows.put(
            T,
            {
                "cert_id": cid(e),
                "name": e.name,
                "issuer": "Unknown",
                "actions": "[]",
                "version": None,
                "nbf": None,
                "exp": None,
                "fired": "[]",
                "near_fired": 0,
                "op_version": None,
                "pending": "{}",
                "renewal": None,
                "deleted": 0,
            },
        )

    @on("Certificate.PolicyReplaced")
    def policy(self, rows: Rows, e: Any) -> None:
        actions = [
            {k: v for k, v in vars(a).items() if v is not None}
            for a in actions_from_policy(e.policy)
        ]
        self._change(rows, e, issuer=issuer_from_policy(e.policy), actions=js(actions))

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        self._change(rows, e, op_version=e.version)

    @on("Certificate.X509Merged", "Certificate.CertificateImported")
    def certificate(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is not None:
            pending = loads(row["pending"])
            pending[e.version] = [iso_of(e, "not_before"), iso_of(e, "not_after")]
            self._change(rows, e, pending=js(pending))

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is None:
            return
        pending = loads(row["pending"])
        nbf, exp = pending.pop(e.version, [None, None])
        op = None if row["op_version"] == e.version else row["op_version"]
        self._change(
            rows,
            e,
            version=e.version,
            nbf=nbf,
            exp=exp,
            fired="[]",
            near_fired=0,
            renewal=None,
            pending=js(pending),
            op_version=op,
        )

    @on("Certificate.OperationFailed", "Certificate.OperationCancelled")
    def closed(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is not None and row["op_version"] == e.version:
            self._change(rows, e, op_version=None)

    @on("Certificate.OperationDeleted")
    def op_deleted(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is not None:
            pending = loads(row["pending"])
            pending.pop(e.version, None)
            op = None if row["op_version"] == e.version else row["op_version"]
            self._change(rows, e, op_version=op, pending=js(pending))

    @on("Certificate.LifetimeActionTriggered")
    def triggered(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is None or row["version"] != e.version:
            return
        fired = loads(row["fired"])
        fired.append(f"{e.action}:{e.trigger}")
        values: dict[str, Any] = {"fired": js(fired)}
        if e.action == NEAR_EXPIRY:
            values["near_fired"] = 1
        if e.outcome == "renew":
            values["renewal"] = js(
                {"attempts": 0, "operation": None, "retry_at": None, "gave_up": False}
            )
        self._change(rows, e, **values)

    @on("Certificate.RenewalAttempted", "Certificate.RenewalFailed")
    def renewal(self, rows: Rows, e: Any) -> None:
        row = self._row(rows, e)
        if row is None or row["version"] != e.version or not row["renewal"]:
            return
        r = loads(row["renewal"])
        r["attempts"] = e.attempt
        if type(e).__name__ == "RenewalAttempted":
            r.update(operation=e.new_version, retry_at=None)
        else:
            r.update(operation=None, retry_at=iso(e.retry_at), gave_up=e.retry_at is None)
        self._change(rows, e, renewal=js(r))

    @on("Certificate.Deleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        self._change(rows, e, deleted=1)

    @on("Certificate.Recovered")
    def recovered(self, rows: Rows, e: Any) -> None:
        self._change(rows, e, deleted=0)

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        self._change(
            rows,
            e,
            issuer="Unknown",
            actions="[]",
            version=None,
            nbf=None,
            exp=None,
            fired="[]",
            near_fired=0,
            op_version=None,
            pending="{}",
            renewal=None,
            deleted=0,
        )


def due_certificates(db: Db, now: datetime, near_days: int, limit: int = 500) -> list[str]:
    """Ids of live certificates that may have something due at `now`."""
    from datetime import timedelta

    near_until = iso(now + timedelta(days=near_days)) if near_days > 0 else ""
    rows = db.execute(
        f"SELECT cert_id FROM {T} WHERE deleted = 0 AND version IS NOT NULL"
        " AND (due <= ? OR (near_fired = 0 AND exp <= ?)) LIMIT ?",
        [iso(now), near_until, limit],
    )
    return [str(r[0]) for r in rows]


def lifetime_facts(db: Db, name: str | None = None) -> list[LifetimeFacts]:
    """The facts of every live certificate with a current version (or of one, by name)."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {T} WHERE deleted = 0 AND version IS NOT NULL"
    params: list[Any] = []
    if name is not None:
        sql += " AND LOWER(name) = ?"
        params.append(name.lower())
    found = []
    for values in db.execute(sql + " ORDER BY name", params):
        facts = facts_of(dict(zip(COLUMNS, values, strict=True)))
        if facts is not None:
            found.append(facts)
    return found
