"""Rendering for the CLI: Key Vault JSON, or a readable table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

TIME_FIELDS = {"nbf", "exp", "created", "updated", "deletedDate", "scheduledPurgeDate"}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, name + "."))
        elif isinstance(value, list):
            if value and all(isinstance(v, Mapping) for v in value):
                for i, item in enumerate(value):
                    rows.extend(_flatten(item, f"{name}[{i}]."))
            else:
                rows.append((name, ", ".join(str(v) for v in value)))
        else:
            rows.append((name, _cell(key, value)))
    return rows


def _cell(key: str, value: Any) -> str:
    if key in TIME_FIELDS and isinstance(value, int):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= 96 else text[:93] + "..."


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    click.echo(out.getvalue(), nl=False)


def emit(data: Any, fmt: str) -> None:
    """Print one JSON document, or its fields as a two-column table or CSV."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
        return
    if fmt == "csv" and isinstance(data, Mapping):
        _csv(["field", "value"], _flatten(data))
        return
    if isinstance(data, Mapping):
        rows = _flatten(data)
        width = max((len(k) for k, _ in rows), default=0)
        for key, value in rows:
            click.echo(f"{key.ljust(width)}  {value}")
    else:
        click.echo(str(data))


def emit_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Print a list: JSON `{"value": [...]}` as Key Vault lists, or aligned columns."""
    if fmt == "json":
        click.echo(json.dumps({"value": list(rows)}, indent=2))
        return
    if fmt == "csv":
        _csv(columns, [["" if r.get(c) is None else r.get(c) for c in columns] for r in rows])
        return
    cells = [[_cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
