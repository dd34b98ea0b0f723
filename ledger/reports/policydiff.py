"""What changed between two policy documents, field by field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ABSENT = object()


def _flatten(doc: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            _flatten(value, path + ".", out)
        else:
            out[path] = value


def policy_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Each changed field as {"path", "from", "to"}; a side without the field has null.

    Paths are dotted (`x509_props.validity_months`); lists compare as whole values.
    """
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    if before:
        _flatten(before, "", old)
    if after:
        _flatten(after, "", new)
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, _ABSENT), new.get(path, _ABSENT)
        if a != b:
            changes.append(
                {
                    "path": path,
                    "from": None if a is _ABSENT else a,
                    "to": None if b is _ABSENT else b,
                }
            )
    return changes
