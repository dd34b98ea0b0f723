"""Helpers shared by the CLI's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ledger.cli import State
from ledger.domain.errors import BadParameter

pass_state = click.make_pass_decorator(State)


def read_input(path: str) -> bytes:
    """A file's bytes, or standard input for '-'."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadParameter(f"cannot read {path}: {exc.strerror}") from exc


def read_json(path: str, what: str) -> Any:
    try:
        return json.loads(read_input(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadParameter(f"{what} {path} is not valid JSON: {exc}") from exc


def parse_tags(pairs: tuple[str, ...]) -> dict[str, str] | None:
    if not pairs:
        return None
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParameter(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags
