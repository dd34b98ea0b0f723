"""Checks a report against the published JSON Schema (docs/report-schema-v1.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report-schema-v1.json"


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(report: Any) -> None:
    """Fails with the most specific error: its path in the report and the problem."""
    error = best_match(validator().iter_errors(report))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(root)"
        raise AssertionError(f"{where}: {error.message[:300]}")
