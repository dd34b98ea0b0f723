"""The base of every read model: tables it owns, and a handler per event type."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from ledger.database import Cursor
from projections.rows import Rows

Handler = Callable[[Any, Rows, Any], None]
CID, AT = "_cid", "_at"  # where `cid` and `at` keep their text in an event's dict


def iso(moment: datetime | None) -> str | None:
    """Fixed-width UTC text, so that text order is time order on every backend."""
    if moment is None:
        return None
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def at(event: Any) -> str:
    """The event's time as view text, computed once per event (or kept by the decoder)."""
    found: str | None = event.__dict__.get(AT)
    if found is None:
        found = event.__dict__[AT] = iso(event.timestamp) or ""
    return found


def iso_of(event: Any, field: str) -> str | None:
    """`iso` of one of the event's times, computed once per event and field."""
    return _once(event, "_iso_" + field, iso, field)  # type: ignore[no-any-return]


def js_of(event: Any, field: str) -> str:
    """`js` of one of the event's fields, computed once per event and field."""
    return _once(event, "_js_" + field, js, field)  # type: ignore[no-any-return]


def _once(event: Any, key: str, convert: Callable[[Any], Any], field: str) -> Any:
    """`convert` of the event's `field`, kept in the event under `key`."""
    cached = event.__dict__
    if key in cached:
        return cached[key]
    found = cached[key] = convert(getattr(event, field))
    return found


def js(value: Any) -> str:
    """Compact JSON with sorted keys, as orjson writes it (non-ASCII text as it is)."""
    if not value and type(value) in (dict, list, tuple):
        return "{}" if type(value) is dict else "[]"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson cannot write (lone surrogates, huge integers)
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """JSON as `js` writes it, read back (with orjson, or json for what orjson refuses)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def cid(event: Any) -> str:
    """The originator id as text (a certificate's or issuer's stream), computed once per
    event (or kept by the decoder)."""
    found: str | None = event.__dict__.get(CID)
    if found is None:
        found = event.__dict__[CID] = str(event.originator_id)
    return found


def staged(rows: Rows, table: str, event: Any) -> dict[str, Any]:
    """The staging row of the event's version, which a promotion needs."""
    row = rows.get(table, cid(event), event.version)
    if row is None:
        raise LookupError(f"version {event.version} of {cid(event)} was promoted but never staged")
    return row


class View:
    """A read model.

    Subclasses declare `name`, `schema`, `keys` (each table's primary key columns) and
    `@on("Event.Name")` handlers, which read and change rows through `Rows`. `revision`
    goes up when the tables change shape, so that stored views are rebuilt.
    """

    name: ClassVar[str]
    schema: ClassVar[tuple[str, ...]]
    keys: ClassVar[dict[str, tuple[str, ...]]]
    revision: ClassVar[int] = 1
    handlers: ClassVar[dict[str, Handler]]

    def __init__(self, *, suffix: str = "", track: str | None = None) -> None:
        """`suffix` names the tables this instance writes (a rebuild fills new tables,
        `{table}{suffix}`, while the live ones go on serving); `track` names its position
        (default: the view's name; a rebuild's share of the log has its own)."""
        self.track = track or self.name
        self.rows = Rows(self.keys, suffix)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {
            topic: member
            for member in cls.__dict__.values()
            for topic in getattr(member, "_handles", ())
        }

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.keys)

    def table_ddl(self, suffix: str = "") -> list[str]:
        """The CREATE TABLE statements (no indexes), for tables named `{table}{suffix}`."""
        found = []
        for statement in self.schema:
            if statement.lstrip().upper().startswith("CREATE TABLE"):
                for table in self.tables:
                    statement = re.sub(rf"\b{table}\b", table + suffix, statement)
                found.append(statement)
        return found

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self.handlers)

    def apply(self, event: Any) -> None:
        """Apply one event (between `rows.bind` and `rows.flush`)."""
        handler = self.handlers.get(type(event).__qualname__)
        if handler is not None:
            handler(self, self.rows, event)


def apply_all(cur: Cursor, views: Sequence[View], events: Iterable[Any]) -> None:
    """Apply events to views within the transaction of `cur`, and write their rows."""
    for view in views:
        view.rows.bind(cur)
    for event in events:
        for view in views:
            view.apply(event)
    for view in views:
        view.rows.flush(cur)


def on(*qualnames: str) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of events named like `Certificate.X509Merged`."""

    def mark(method: Handler) -> Handler:
        method._handles = qualnames  # type: ignore[attr-defined]
        return method

    return mark
