"""One `certledger serve` per test module, and Azure SDK clients talking to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.keyvault.certificates import CertificateClient

from tests.e2e.api.served import Served, StaticCredential, start


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("served") / "home")
    try:
        yield server
    finally:
        server.stop()
    # A 5xx would have logged its traceback: none may have happened.
    assert not [line for line in server.log if "Traceback" in line], "".join(server.log)


@pytest.fixture(scope="module")
def admin_token(served: Served) -> str:
    return served.token("admin")


@pytest.fixture(scope="module")
def credential(admin_token: str) -> StaticCredential:
    return StaticCredential(admin_token)


@pytest.fixture(scope="module")
def certificates(served: Served, credential: StaticCredential) -> Iterator[CertificateClient]:
    with CertificateClient(served.url, credential, **served.client_options()) as client:
        yield client
