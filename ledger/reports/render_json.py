"""JSON output: the header indented for people, then one line per certificate or finding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

# The long lists written one item per line.
ITEM_LISTS = ("certificates", "findings")


def write_json(report: Mapping[str, Any], out: TextIO) -> None:
    out.write("{\n")
    keys = list(report)
    for index, key in enumerate(keys):
        value = report[key]
        out.write(f"  {json.dumps(key)}: ")
        if key in ITEM_LISTS and isinstance(value, list):
            dumps = orjson.dumps
            separator = "[\n    "
            for item in value:
                out.write(separator)
                out.write(dumps(item).decode())
                separator = ",\n    "
            out.write("\n  ]" if value else "[]")
        else:
            out.write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        out.write(",\n" if index < len(keys) - 1 else "\n")
    out.write("}\n")
