"""Fixtures shared by every test layer: a private PostgreSQL schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

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
