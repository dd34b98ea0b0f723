"""JSON output: the header indented for people, then one line per certificate or finding."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import orjson

# The long lists written one item per line.
ITEM_LISTS = ("certificates", "findings")


def write_json(report: Mapping[str, Any], out: TextIO) -> None:
    write_json_lines(report, out, {})


def write_json_lines(
    report: Mapping[str, Any], out: TextIO, encoded: Mapping[str, Iterable[str]]
) -> None:
    """`encoded` holds long lists whose items are already JSON text (one per line); each
    is written after the report's own keys, as if it were the report's last key."""
    out.write("{\n")
    keys = [*(k for k in report if k not in encoded), *encoded]
    for index, key in enumerate(keys):
        out.write(f"  {json.dumps(key)}: ")
        if key in encoded:
            _write_items(out, encoded[key])
        else:
            value = report[key]
            if key in ITEM_LISTS and isinstance(value, list):
                dumps = orjson.dumps
                _write_items(out, (dumps(item).decode() for item in value))
            else:
                out.write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        out.write(",\n" if index < len(keys) - 1 else "\n")
    out.write("}\n")


def _write_items(out: TextIO, items: Iterable[str], batch: int = 2000) -> None:
    """The items, one a line, written `batch` lines at a time."""
    opened = False
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == batch:
            out.write(",\n    " if opened else "[\n    ")
            out.write(",\n    ".join(chunk))
            opened, chunk = True, []
    if chunk:
        out.write(",\n    " if opened else "[\n    ")
        out.write(",\n    ".join(chunk))
        opened = True
    out.write("\n  ]" if opened else "[]")
