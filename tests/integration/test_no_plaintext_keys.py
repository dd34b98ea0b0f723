"""No private key reaches the disk in the clear, in any encoding."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import PEM, Clock, PolicyFactory


@pytest.fixture
def backend() -> str:
    """These checks read the database files themselves: SQLite only."""
    return "sqlite"


DER = serialization.Encoding.DER
PEM_ENC = serialization.Encoding.PEM
FORMATS = {
    "PKCS#8": serialization.PrivateFormat.PKCS8,
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
}
# Shorter base64 fragments (a PEM body's last line) could match random bytes by chance.
MIN_PEM_LINE = 16

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def be_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or (value.bit_length() + 7) // 8, "big")


def needles(label: str, key: PrivateKey) -> dict[str, bytes]:
    """Every encoding of `key` that must never be found on disk."""
    found: dict[str, bytes] = {}
    public = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for fmt_name, fmt in FORMATS.items():
        der = key.private_bytes(DER, fmt, serialization.NoEncryption())
        found[f"{label} {fmt_name} DER"] = der
        found[f"{label} {fmt_name} DER hex"] = der.hex().encode()
        found[f"{label} {fmt_name} DER HEX"] = der.hex().upper().encode()
        pem = key.private_bytes(PEM_ENC, fmt, serialization.NoEncryption())
        body = [line for line in pem.splitlines() if not line.startswith(b"-----")]
        found[f"{label} {fmt_name} PEM body"] = b"".join(body)
        for index, line in enumerate(body):
            # Lines holding only the modulus or the public point also encode the stored
            # public key and certificate; every other line carries private bytes.
            if len(line) >= MIN_PEM_LINE and base64.b64decode(line) not in public:
                found[f"{label} {fmt_name} PEM line {index}"] = line
    numbers: dict[str, bytes] = {}
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        for field in ("d", "p", "q", "dmp1", "dmq1", "iqmp"):
            numbers[field] = be_bytes(getattr(n, field))
    else:
        size = (key.curve.key_size + 7) // 8
        numbers["private_value"] = be_bytes(key.private_numbers().private_value, size)
    for field, raw in numbers.items():
        found[f"{label} {field}"] = raw
        found[f"{label} {field} hex"] = raw.hex().encode()
        found[f"{label} {field} HEX"] = raw.hex().upper().encode()
        found[f"{label} {field} base64"] = base64.b64encode(raw)
        found[f"{label} {field} base64url"] = base64.urlsafe_b64encode(raw).rstrip(b"=")
    return found


def leaks(files: dict[str, bytes], searched: dict[str, bytes]) -> list[str]:
    return [
        f"{what} in {path}"
        for path, blob in files.items()
        for what, needle in searched.items()
        if needle in blob
    ]


def read_home(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def leaf_for(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], public: Any) -> Any:
    ca_key, ca_cert = ca
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example.com")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=90))
        .sign(ca_key, hashes.SHA256())
    )


def populate(ledger: Ledger, make_policy: PolicyFactory) -> list[PrivateKey]:
    """Keys made or taken in by every path: Self, issuer, merge, PFX and PEM import."""
    ctx = Ctx("admin")
    worker = Worker(ledger)
    ledger.set_issuer(ctx, "corp", provider="LocalCA")
    for name, policy in [
        ("self-rsa", make_policy(kty="RSA")),
        ("self-ec", make_policy(content_type=PEM)),
        ("issued-ec", make_policy(issuer="corp")),
        ("issued-rsa", make_policy(issuer="corp", kty="RSA", content_type=PEM)),
    ]:
        ledger.create_certificate(ctx, name, policy)
        worker.drive(name)
    ledger.create_certificate(ctx, "self-ec")  # a second version
    worker.drive("self-ec")

    ca = make_ca("Plaintext Test CA")
    for name, kty in [("merged-ec", "EC"), ("merged-rsa", "RSA")]:
        cert = ledger.create_certificate(ctx, name, make_policy(issuer="Unknown", kty=kty))
        csr = x509.load_der_x509_csr(base64.b64decode(cert.pending_version().csr_der or ""))
        ledger.merge_certificate(ctx, name, leaf_for(ca, csr.public_key()).public_bytes(PEM_ENC))

    imported: list[PrivateKey] = [rsa.generate_private_key(65537, 2048)]
    imported.append(ec.generate_private_key(ec.SECP256R1()))
    # An unencrypted PFX holds its key in the clear: the upload itself must not be kept.
    pfx = pkcs12.serialize_key_and_certificates(
        b"pfx",
        imported[0],
        leaf_for(ca, imported[0].public_key()),
        [ca[1]],
        serialization.NoEncryption(),
    )
    ledger.import_certificate(ctx, "imported-pfx", pfx)
    pem = imported[1].private_bytes(
        PEM_ENC, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + leaf_for(ca, imported[1].public_key()).public_bytes(PEM_ENC)
    ledger.import_certificate(ctx, "imported-pem", pem)
    # Secrets read back must not be cached on disk either.
    for name in ("self-rsa", "self-ec", "issued-rsa", "imported-pfx", "imported-pem"):
        ledger.secret_value(ctx, name)

    keys: list[PrivateKey] = []
    names = ["self-rsa", "self-ec", "issued-ec", "issued-rsa", "merged-ec", "merged-rsa"]
    for name in [*names, "imported-pfx", "imported-pem"]:
        for version in ledger.certificate(name).versions.values():
            assert version.key_id is not None
            key = ledger.custody.export_private_key(version.key_id)
            assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
            keys.append(key)
    ca_key_id = ledger.issuer(ctx, "corp").provider_state["ca_key_id"]
    ca_key = ledger.custody.export_private_key(ca_key_id)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    keys.append(ca_key)
    numbers = {k.private_numbers() for k in keys}
    assert all(k.private_numbers() in numbers for k in imported)
    return keys


def all_needles(keys: Iterable[PrivateKey]) -> dict[str, bytes]:
    searched: dict[str, bytes] = {}
    for index, key in enumerate(keys):
        searched.update(needles(f"key {index} ({type(key).__name__})", key))
    return searched


def test_no_private_key_on_disk(tmp_path: Path, make_policy: PolicyFactory, clock: Clock) -> None:
    settings = Settings.resolve(home=tmp_path / "vault", environ={})
    ledger = open_ledger(settings, clock=clock)
    try:
        keys = populate(ledger, make_policy)
        assert len(keys) == 10
        searched = all_needles(keys)

        while_open = read_home(settings.home)
        assert {"ledger.db", "ledger.db-wal", "master.key"} <= set(while_open)
        assert len(while_open["ledger.db-wal"]) + len(while_open["ledger.db"]) > 50_000
        assert leaks(while_open, searched) == []
    finally:
        ledger.close()

    after_close = read_home(settings.home)
    assert "ledger.db" in after_close
    assert leaks(after_close, searched) == []

    assert stat.S_IMODE(settings.master_key_file.stat().st_mode) == 0o600


def test_the_scan_finds_a_planted_key(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    searched = {**needles("rsa", rsa_key), **needles("ec", ec_key)}
    n = rsa_key.private_numbers()
    planted = {
        "pem": rsa_key.private_bytes(
            PEM_ENC, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "rsa-q": b"\x00junk" + be_bytes(n.q) + b"junk",
        "ec-hex": b"d=" + format(ec_key.private_numbers().private_value, "064x").encode(),
        "clean": ec_key.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    # Only the few lines that encode nothing but public-key bytes are left out.
    rsa_lines = [k for k in searched if k.startswith("rsa PKCS#8 PEM line")]
    ec_lines = [k for k in searched if k.startswith("ec PKCS#8 PEM line")]
    assert len(rsa_lines) >= 14
    assert len(ec_lines) >= 2
    found = leaks(planted, searched)
    assert "rsa PKCS#8 PEM line 10 in pem" in found
    assert "rsa traditional PEM line 10 in pem" not in found
    assert "rsa q in rsa-q" in found
    assert "ec private_value hex in ec-hex" in found
    assert not [f for f in found if f.endswith(" in clean")]
