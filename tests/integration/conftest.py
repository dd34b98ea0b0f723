"""Shared fixtures for the integration tests, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import DomainEventProtocol

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.policy import CertificatePolicy
from ledger.settings import Settings
from ledger.worker import Worker

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"

PolicyFactory = Callable[..., CertificatePolicy]
Openssl = Callable[..., str]


class Clock:
    """A wall clock that tests can move forward (or back) by setting `offset`."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def build_policy(
    *,
    issuer: str = "Self",
    subject: str = "CN=app.example.com, O=Contoso",
    dns_names: tuple[str, ...] = ("app.example.com",),
    emails: tuple[str, ...] = (),
    kty: str = "EC",
    curve: str | None = "P-256",
    key_size: int | None = None,
    validity_months: int = 12,
    content_type: str = PKCS12,
    exportable: bool = True,
    reuse_key: bool = False,
    ekus: list[str] | None = None,
    key_usage: list[str] | None = None,
) -> CertificatePolicy:
    """A Key Vault policy document, validated by the ledger's own policy model."""
    key_props: dict[str, Any] = {"kty": kty, "exportable": exportable, "reuse_key": reuse_key}
    if kty.startswith("EC"):
        key_props["crv"] = curve
    else:
        key_props["key_size"] = key_size or 2048
    x509_props: dict[str, Any] = {"subject": subject, "validity_months": validity_months}
    if dns_names or emails:
        x509_props["sans"] = {"dns_names": list(dns_names), "emails": list(emails)}
    if ekus is not None:
        x509_props["ekus"] = ekus
    if key_usage is not None:
        x509_props["key_usage"] = key_usage
    return CertificatePolicy.from_kv_json(
        {
            "key_props": key_props,
            "secret_props": {"contentType": content_type},
            "x509_props": x509_props,
            "issuer": {"name": issuer},
        }
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """A ledger on SQLite, or on a private PostgreSQL schema: every test runs on both."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    return Settings.resolve(home=tmp_path / "home", database_url=url, environ={})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(settings: Settings, clock: Clock) -> Iterator[Ledger]:
    opened = open_ledger(settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ctx() -> Ctx:
    return Ctx("admin")


@pytest.fixture
def worker(ledger: Ledger) -> Worker:
    return Worker(ledger)


@pytest.fixture
def make_policy() -> PolicyFactory:
    return build_policy


@pytest.fixture
def all_events(ledger: Ledger) -> Callable[[], list[DomainEventProtocol[Any]]]:
    """Every event stored in the ledger, in notification order."""

    def read() -> list[DomainEventProtocol[Any]]:
        notifications = ledger.recorder.select_notifications(start=1, limit=10000)
        return [ledger.mapper.to_domain_event(n) for n in notifications]

    return read


@pytest.fixture(scope="session")
def openssl_bin() -> str:
    path = shutil.which("openssl")
    # A missing openssl is a failure, never a skip.
    assert path is not None, "the openssl command line tool is required for these tests"
    return path


@pytest.fixture
def openssl(openssl_bin: str) -> Openssl:
    """Run openssl with the given arguments; fail the test unless it exits with 0."""

    def run(*args: str | Path, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [openssl_bin, *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"openssl {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    return run
