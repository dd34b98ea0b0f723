"""A real PKCS#11 token for the tests: SoftHSM2 with a private configuration per test."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.certificate import Version
from ledger.keys import pkcs11 as hsm
from ledger.settings import Settings
from tests.integration.conftest import Clock

# Debian's softhsm2 installs the module here (and under the multiarch directory).
SOFTHSM_MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
TOKEN_LABEL = "certledger-test"
USER_PIN = "2468-user"
SO_PIN = "1357-officer"

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    label: str
    pin: str
    conf: Path
    tokendir: Path

    def environ(self, pin: str | None = None) -> dict[str, str]:
        """The ledger's PKCS#11 settings for this token."""
        return {
            "CERTLEDGER_PKCS11_MODULE": str(self.module),
            "CERTLEDGER_PKCS11_TOKEN": self.label,
            "CERTLEDGER_PKCS11_PIN": self.pin if pin is None else pin,
        }

    def config(self, pin: str | None = None) -> hsm.Pkcs11Config:
        return hsm.Pkcs11Config(self.module, self.label, self.pin if pin is None else pin)


@pytest.fixture(scope="session")
def softhsm_module() -> Path:
    found = [m for m in SOFTHSM_MODULES if m.is_file()]
    # A missing token is a failure, never a skip.
    assert found, "SoftHSM2 is required for these tests: apt-get install -y softhsm2"
    return found[0]


@pytest.fixture(scope="session")
def softhsm_util() -> str:
    path = shutil.which("softhsm2-util")
    assert path is not None, "softhsm2-util is required for these tests: apt-get install softhsm2"
    return path


def init_token(util: str, conf: Path, label: str, pin: str = USER_PIN) -> None:
    proc = subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", SO_PIN],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def softhsm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, softhsm_module: Path, softhsm_util: str
) -> Iterator[SoftHsm]:
    """A fresh token in its own token directory; the module reads SOFTHSM2_CONF when loaded."""
    tokendir = tmp_path / "softhsm-tokens"
    tokendir.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    init_token(softhsm_util, conf, TOKEN_LABEL)
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    yield SoftHsm(softhsm_module, TOKEN_LABEL, USER_PIN, conf, tokendir)
    # Every custody was closed, so the module is finalised and the next test's
    # configuration is read afresh.
    assert hsm._module_users == {}, "a PKCS#11 custody was left open"


@pytest.fixture
def hsm_settings(tmp_path: Path, softhsm: SoftHsm) -> Settings:
    return Settings.resolve(home=tmp_path / "home", environ=softhsm.environ())


@pytest.fixture
def hsm_ledger(hsm_settings: Settings, clock: Clock) -> Iterator[Ledger]:
    opened = open_ledger(hsm_settings, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def token(softhsm: SoftHsm) -> Iterator[hsm.Pkcs11Token]:
    """A session of the tests' own on the token, to look at what the ledger made there."""
    opened = hsm.Pkcs11Token(softhsm.config())
    try:
        yield opened
    finally:
        opened.close()


def leaf_of(v: Version) -> x509.Certificate:
    assert v.cert_der is not None
    return x509.load_der_x509_certificate(base64.b64decode(v.cert_der))


def spki(key: object) -> bytes:
    data: bytes = key.public_bytes(DER, SPKI)  # type: ignore[attr-defined]
    return data
