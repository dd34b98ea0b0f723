"""Helpers shared by the CLI's commands."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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


F = TypeVar("F", bound=Callable[..., Any])


def point_in_time(command: F) -> F:
    """Add --as-of TIME and --at-position N, passed on as `at` (a PointInTime)."""

    command = click.option(
        "--at-position",
        type=click.IntRange(min=1),
        metavar="N",
        help="As the ledger stood after the event at log position N.",
    )(command)
    command = click.option(
        "--as-of", metavar="TIME", help="As the ledger stood at TIME (ISO 8601, UTC if naive)."
    )(command)

    @functools.wraps(command)
    def wrapper(*args: Any, as_of: str | None, at_position: int | None, **kwargs: Any) -> Any:
        from ledger.moments import PointInTime, parse_moment

        at = PointInTime(parse_moment(as_of) if as_of else None, at_position)
        return command(*args, at=at, **kwargs)

    return wrapper  # type: ignore[return-value]
