"""The base of every read model: tables it owns, and a handler per event type."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from ledger.database import Cursor

Handler = Callable[[Any, Cursor, Any], None]


def iso(moment: datetime | None) -> str | None:
    """Fixed-width UTC text, so that text order is time order on every backend."""
    if moment is None:
        return None
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def at(event: Any) -> str:
    """The event's time as view text, computed once per event."""
    found: str | None = event.__dict__.get("_at")
    if found is None:
        found = event.__dict__["_at"] = iso(event.timestamp) or ""
    return found


def js(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def cid(event: Any) -> str:
    """The originator id as text (a certificate's or issuer's stream), computed once."""
    found: str | None = event.__dict__.get("_cid")
    if found is None:
        found = event.__dict__["_cid"] = str(event.originator_id)
    return found


class View:
    """A read model. Subclasses declare `name`, `schema` and `@on("Event.Name")` handlers."""

    name: ClassVar[str]
    schema: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]
    handlers: ClassVar[dict[str, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {
            topic: member
            for member in cls.__dict__.values()
            for topic in getattr(member, "_handles", ())
        }

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self.handlers)

    def apply(self, cur: Cursor, event: Any) -> None:
        handler = self.handlers.get(type(event).__qualname__)
        if handler is not None:
            handler(self, cur, event)


def on(*qualnames: str) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of events named like `Certificate.X509Merged`."""

    def mark(method: Handler) -> Handler:
        method._handles = qualnames  # type: ignore[attr-defined]
        return method

    return mark


@lru_cache(maxsize=512)
def _update_sql(table: str, where: tuple[str, ...], columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{k} = ?" for k in columns)
    cond = " AND ".join(f"{k} = ?" for k in where)
    return f"UPDATE {table} SET {sets} WHERE {cond}"


@lru_cache(maxsize=512)
def _insert_sql(table: str, columns: tuple[str, ...], replace_on: str) -> str:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    if replace_on:
        keys = {k.strip() for k in replace_on.split(",")}
        sets = ", ".join(f"{k} = excluded.{k}" for k in columns if k not in keys)
        sql += f" ON CONFLICT ({replace_on}) DO UPDATE SET {sets}"
    return sql


def update(cur: Cursor, table: str, where: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    cur.run(_update_sql(table, tuple(where), tuple(values)), [*values.values(), *where.values()])


def insert(cur: Cursor, table: str, values: Mapping[str, Any], *, replace_on: str = "") -> None:
    """INSERT; with `replace_on` (the key columns), an upsert that overwrites the row."""
    cur.run(_insert_sql(table, tuple(values), replace_on), list(values.values()))
