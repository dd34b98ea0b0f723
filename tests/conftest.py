"""Fixtures shared by every test layer: a private PostgreSQL schema per test, and a real
ACME server (Debian's pebble)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.pebble import Pebble, start_pebble

PG_URL = os.environ.get("CERTLEDGER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL naming a fresh schema, dropped after the test."""
    schema = "t_" + uuid.uuid4().hex[:12]
    conninfo = PG_URL
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:  # a missing server fails the test
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """pebble with real http-01/dns-01 validation, 5% nonce rejection, no validation sleeps."""
    server = start_pebble(Path(tmp_path_factory.mktemp("pebble")))
    try:
        yield server
    finally:
        server.stop()
