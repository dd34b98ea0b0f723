from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main

Run = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `certledger --home HOME ARGS...` in-process; `expect` is the exit status."""
    monkeypatch.delenv("CERTLEDGER_HOME", raising=False)
    monkeypatch.delenv("CERTLEDGER_PRINCIPAL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0, input: bytes | None = None) -> Result:
        result = runner.invoke(main, ["--home", str(home), *args], input=input)
        assert result.exit_code == expect, (result.output, result.stderr, result.exception)
        return result

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
