"""A view's rows during a batch: reads go through a cache, writes wait for the commit.

Handlers read and change rows by primary key; `flush` then writes every changed table with
one `executemany` per kind of change (deletes first, then upserts), inside the batch's
transaction. Rows stay cached between batches while no other process has moved the view
(the projector checks its tracking position and calls `forget` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Protocol

from ledger.database import Cursor


class Reader(Protocol):
    """Where rows not cached are read: a connection, or the batch's own cursor."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def columns(self, table: str) -> tuple[str, ...]: ...


Key = tuple[Any, ...]
Row = dict[str, Any]


class Table:
    """One table's cached rows and the changes not yet written."""

    def __init__(self, name: str, key: tuple[str, ...], columns: tuple[str, ...]) -> None:
        self.name = name
        self.key = key
        self.columns = columns
        self.cached: dict[Key, Row | None] = {}  # None: known to be absent
        self.dirty: set[Key] = set()
        self.deleted: set[Key] = set()
        self.fresh: set[Key] = set()  # inserted in this batch, not in the database
        self.added: set[Key] = set()  # see Rows.add
        self.cleared: list[Key] = []  # prefixes deleted in the database at flush
        self.by_prefix: dict[Any, set[Key]] = {}  # first key column -> cached keys
        self.blank: Row = dict.fromkeys(columns)
        every = itemgetter(*columns)
        self.values: Callable[[Row], tuple[Any, ...]] = (
            (lambda row: (every(row),)) if len(columns) == 1 else every  # type: ignore[assignment]
        )
        pick = itemgetter(*key)
        self.key_of: Callable[[Row], Key] = (
            (lambda row: (pick(row),)) if len(key) == 1 else pick  # type: ignore[assignment]
        )
        placeholders = ", ".join("?" * len(columns))
        values = [c for c in columns if c not in key]
        conflict = (
            f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in values)}"
            if values
            else "DO NOTHING"
        )
        self.upsert_sql = (
            f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({placeholders})"
            f" ON CONFLICT ({', '.join(key)}) {conflict}"
        )
        self.insert_sql = (
            f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({placeholders})"
            f" ON CONFLICT ({', '.join(key)})"
        )
        self.least: str | None = None  # see Rows.add
        self.add_sql = self.insert_sql + " DO NOTHING"
        self.select_sql = f"SELECT {', '.join(columns)} FROM {name} WHERE " + " AND ".join(
            f"{k} = ?" for k in key
        )
        self.delete_sql = f"DELETE FROM {name} WHERE " + " AND ".join(f"{k} = ?" for k in key)

    def remember(self, key: Key, row: Row | None) -> None:
        if key not in self.cached and len(self.key) > 1:
            self.by_prefix.setdefault(key[0], set()).add(key)
        self.cached[key] = row

    def reset(self) -> None:
        """Forget the pending changes (written, or rolled back)."""
        self.cleared, self.deleted, self.dirty = [], set(), set()
        self.fresh, self.added = set(), set()

    def clear_cache(self) -> None:
        self.cached.clear()
        self.by_prefix.clear()


class Rows:
    """The rows of one view's tables (name -> primary key columns)."""

    # Rows kept between batches. Kept small: every cached row is an object the garbage
    # collector walks, which slows down everything else the process allocates.
    capacity = 5_000

    def __init__(self, keys: Mapping[str, tuple[str, ...]], suffix: str = "") -> None:
        self.keys = dict(keys)
        self.suffix = suffix  # of the tables' names in the database (a rebuild's new tables)
        self.tables: dict[str, Table] = {}
        self.reader: Reader | None = None
        # per table: completes each changed row just before it is written
        self.prepare: dict[str, Callable[[Row], None]] = {}

    def bind(self, reader: Reader) -> None:
        """Read rows that are not cached through `reader` (until the next `bind`)."""
        self.reader = reader
        if not self.tables:
            for name, key in self.keys.items():
                stored = name + self.suffix
                self.tables[name] = Table(stored, key, reader.columns(stored))

    def get(self, table: str, *key: Any) -> Row | None:
        """The row with this primary key (a copy is not made: change it through `put`)."""
        t = self.tables[table]
        try:
            return t.cached[key]
        except KeyError:
            pass
        row: Row | None = None
        if not (t.cleared and any(key[: len(p)] == p for p in t.cleared)):
            if self.reader is None:
                raise RuntimeError("rows used before bind()")
            found = self.reader.execute(t.select_sql, key)
            if found:
                row = dict(zip(t.columns, found[0], strict=True))
        t.remember(key, row)
        return row

    def put(self, table: str, row: Mapping[str, Any], *, new: bool = False) -> Row:
        """Insert or replace a whole row (columns not given are NULL).

        `new` says the row cannot exist yet, so deleting it again before the flush costs
        nothing in the database.
        """
        t = self.tables[table]
        full = {**t.blank, **row}
        key = t.key_of(full)
        t.remember(key, full)
        t.dirty.add(key)
        if new and key not in t.deleted:
            t.fresh.add(key)
        return full

    def add(self, table: str, row: Mapping[str, Any], *, least: str) -> None:
        """Insert a row; where one with its key is stored, it stays, but that its column
        `least` takes the smaller value. Rows added in any order thus end the same."""
        t = self.tables[table]
        full = t.blank.copy()
        full.update(row)
        key = t.key_of(full)
        known = t.cached.get(key)
        if known is None:
            t.remember(key, full)
        elif full[least] < known[least]:
            known[least] = full[least]
        else:
            return
        t.added.add(key)
        if t.least != least:
            t.least = least
            t.add_sql = (
                f"{t.insert_sql} DO UPDATE SET {least} = excluded.{least}"
                f" WHERE excluded.{least} < {t.name}.{least}"
            )

    def patch(self, table: str, key: Key, **values: Any) -> Row | None:
        """Change some columns of an existing row; nothing when there is no such row."""
        t = self.tables[table]
        row = t.cached[key] if key in t.cached else self.get(table, *key)
        if row is None:
            return None
        row.update(values)
        t.dirty.add(key)
        return row

    def delete(self, table: str, *key: Any) -> None:
        t = self.tables[table]
        t.dirty.discard(key)
        t.added.discard(key)
        if key in t.fresh:
            t.fresh.discard(key)  # never reached the database
        else:
            t.deleted.add(key)
        t.remember(key, None)

    def delete_where(self, table: str, *prefix: Any) -> None:
        """Delete every row whose leading key columns equal `prefix` (all rows for ())."""
        t = self.tables[table]
        if prefix:
            keys = t.by_prefix.pop(prefix[0], set())
            doomed = [k for k in keys if k[: len(prefix)] == prefix]
            for k in keys.difference(doomed):
                t.by_prefix.setdefault(prefix[0], set()).add(k)
        else:
            doomed = list(t.cached)
            t.by_prefix.clear()
        for k in doomed:
            t.cached.pop(k, None)
            t.dirty.discard(k)
            t.deleted.discard(k)
            t.fresh.discard(k)
            t.added.discard(k)
        t.cleared.append(prefix)

    def flush(self, cur: Cursor) -> None:
        """Write the batch's changes in the transaction of `cur`."""
        size = 0
        for name, t in self.tables.items():
            by_length: dict[int, list[Key]] = {}
            for prefix in t.cleared:
                by_length.setdefault(len(prefix), []).append(prefix)
            for length, prefixes in by_length.items():
                where = " AND ".join(f"{k} = ?" for k in t.key[:length])
                sql = f"DELETE FROM {t.name}" + (f" WHERE {where}" if where else "")
                cur.executemany(sql, prefixes) if length else cur.run(sql)
            # In key order: neighbouring rows land on the same index pages.
            if t.deleted:
                cur.executemany(t.delete_sql, sorted(t.deleted))
            added = t.added - t.dirty
            if added:
                cur.executemany(t.add_sql, [self._values(t, k) for k in sorted(added)])
            if t.dirty:
                dirty = sorted(t.dirty)
                prepare = self.prepare.get(name)
                if prepare is not None:
                    for key in dirty:
                        prepare(t.cached[key])  # type: ignore[arg-type]
                cur.executemany(t.upsert_sql, [self._values(t, k) for k in dirty])
            t.reset()
            size += len(t.cached)
        if size > self.capacity:
            self.forget()

    @staticmethod
    def _values(t: Table, key: Key) -> tuple[Any, ...]:
        row = t.cached[key]
        assert row is not None
        return t.values(row)

    def forget(self) -> None:
        """Drop every cached row and pending change (after a rollback, or another writer)."""
        for t in self.tables.values():
            t.clear_cache()
            t.reset()
