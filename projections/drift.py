"""Drift: where a view disagrees with the same view rebuilt from the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.database import Db
from projections.view import View


@dataclass(frozen=True)
class Drift:
    view: str
    table: str
    key: dict[str, Any]
    certificate: str
    field: str
    from_log: Any
    in_view: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "table": self.table,
            "key": self.key,
            "certificate": self.certificate,
            "field": self.field,
            "from_log": self.from_log,
            "in_view": self.in_view,
        }


def _columns(db: Db, table: str) -> tuple[list[str], list[str]]:
    """(all columns, primary key columns) of a table, read from the rebuilt SQLite copy."""
    info = db.execute(f"PRAGMA table_info({table})")
    columns = [str(r[1]) for r in info]
    keys = [str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: int(r[5]))]
    return columns, keys or columns


def _normalise(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def compare(live: Db, rebuilt: Db, views: Sequence[View]) -> list[Drift]:
    """Every field where `live` differs from `rebuilt` (a fresh replay of the log)."""
    names = {str(c): str(n) for c, n in rebuilt.execute("SELECT cert_id, name FROM v_current")}
    drifts: list[Drift] = []
    for view in views:
        for table in view.tables:
            columns, keys = _columns(rebuilt, table)
            select = f"SELECT {', '.join(columns)} FROM {table}"
            index = [columns.index(k) for k in keys]

            def keyed(rows: list[tuple[Any, ...]], idx: list[int] = index) -> dict[Any, Any]:
                return {tuple(r[i] for i in idx): tuple(map(_normalise, r)) for r in rows}

            expected, actual = keyed(rebuilt.execute(select)), keyed(live.execute(select))
            for key in sorted(set(expected) | set(actual), key=repr):
                key_map = dict(zip(keys, key, strict=True))
                name = names.get(str(key_map.get("cert_id", "")), "")
                want, got = expected.get(key), actual.get(key)
                if want is None or got is None:
                    drifts.append(
                        Drift(
                            view.name,
                            table,
                            key_map,
                            name,
                            "(row)",
                            "present" if want else "absent",
                            "present" if got else "absent",
                        )
                    )
                    continue
                for column, a, b in zip(columns, want, got, strict=True):
                    if a != b:
                        drifts.append(Drift(view.name, table, key_map, name, column, a, b))
    return drifts
