"""Report JSON written from encoded lines is the JSON written from the items themselves."""

from __future__ import annotations

import io
import json

import orjson
import pytest

from ledger.reports import render_json
from ledger.reports.render_json import write_json, write_json_lines


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7])
def test_lines_in_batches_are_the_items(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [{"n": n, "name": f"c\u00e9-{n}", "tags": {"q": '"'}} for n in range(count)]
    head = {"schema_version": 1, "summary": {"items": count}}
    whole = io.StringIO()
    write_json({**head, "findings": items}, whole)

    write_items = render_json._write_items
    monkeypatch.setattr(
        render_json, "_write_items", lambda out, lines: write_items(out, lines, batch=2)
    )
    lines = io.StringIO()
    write_json_lines(head, lines, {"findings": [orjson.dumps(i).decode() for i in items]})
    assert lines.getvalue() == whole.getvalue()
    assert json.loads(lines.getvalue())["findings"] == items
    assert lines.getvalue().count("\n") == (7 if count == 0 else 8 + count)  # one per item


def test_sqlite_quotes_every_character_as_orjson() -> None:
    """The lineage lines rely on SQLite's json_quote escaping text exactly as orjson."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    points = [*range(0xD800), *range(0xE000, 0x110000)]
    for start in range(0, len(points), 4096):
        text = "".join(map(chr, points[start : start + 4096]))
        quoted = db.execute("SELECT json_quote(?)", [text]).fetchone()[0]
        assert quoted == orjson.dumps(text).decode(), hex(points[start])
