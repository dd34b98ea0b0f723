"""Fixtures shared by every test layer: a real ACME server (Debian's pebble)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pebble import Pebble, start_pebble


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """pebble with real http-01/dns-01 validation, 5% nonce rejection, no validation sleeps."""
    server = start_pebble(Path(tmp_path_factory.mktemp("pebble")))
    try:
        yield server
    finally:
        server.stop()
