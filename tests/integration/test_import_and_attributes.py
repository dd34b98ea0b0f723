"""Importing certificates with their keys, and per-version attributes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
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
from ledger.domain.certificate import Version
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, NotFound
from ledger.domain.policy import CertificatePolicy
from tests.integration.conftest import PEM, PKCS12, Openssl, PolicyFactory

DER = serialization.Encoding.DER
PEM_ENC = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()


def pkcs8(key: Any, encoding: serialization.Encoding = DER) -> bytes:
    data: bytes = key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, NO_PASSWORD)
    return data


def spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Northwind"),
        ]
    )


@dataclass(frozen=True)
class Material:
    """A CA and a leaf it issued, with the leaf's private key."""

    ca: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    def pfx(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else NO_PASSWORD
        )
        return pkcs12.serialize_key_and_certificates(
            b"imported", self.key, self.leaf, [self.ca], encryption
        )

    def pem(self) -> bytes:
        return (
            pkcs8(self.key, PEM_ENC)
            + self.leaf.public_bytes(PEM_ENC)
            + self.ca.public_bytes(PEM_ENC)
        )


def make_material(
    kty: str = "EC", *, days: int = 200, expired: bool = False, cn: str = "import.example.com"
) -> Material:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Import Test CA"))
        .issuer_name(name("Import Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now + timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if kty == "RSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    start = now - timedelta(days=300 if expired else 1)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn), x509.RFC822Name("pki@example.com")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Material(ca=ca, key=key, leaf=leaf)


def leaf_of(v: Version) -> x509.Certificate:
    assert v.cert_der is not None
    return x509.load_der_x509_certificate(base64.b64decode(v.cert_der))


def check_imported(ledger: Ledger, version: Version, material: Material) -> None:
    assert version.origin == "import"
    assert version.issuer_name == "Unknown"
    assert version.promoted_at is not None
    assert leaf_of(version) == material.leaf
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in version.chain_der]
    assert chain == [material.ca]
    assert version.key_id is not None
    kept = ledger.custody.export_private_key(version.key_id)
    assert pkcs8(kept) == pkcs8(material.key)
    assert version.public_key_pem is not None
    assert serialization.load_pem_public_key(version.public_key_pem.encode()) == (
        material.key.public_key()
    )
    assert (version.not_before, version.not_after) == (
        material.leaf.not_valid_before_utc,
        material.leaf.not_valid_after_utc,
    )


# -- import --------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "correct horse"])
def test_import_pfx(ledger: Ledger, ctx: Ctx, password: str | None) -> None:
    material = make_material("RSA")
    data = material.pfx(password.encode() if password else None)

    cert = ledger.import_certificate(ctx, "imported", data, password=password)

    assert cert.current is not None
    v = ledger.certificate("imported").version_of(None)
    assert v.version == cert.current
    check_imported(ledger, v, material)
    assert (v.kty, v.key_size, v.crv) == ("RSA", 2048, None)
    assert v.content_type == PKCS12

    # The policy is inferred from the certificate.
    policy = CertificatePolicy.from_kv_json(cert.policy or {})
    assert policy.issuer_name == "Unknown"
    assert policy.x509_props.subject == "CN=import.example.com, O=Northwind"
    assert policy.x509_props.sans is not None
    assert policy.x509_props.sans.dns_names == ["import.example.com"]
    assert policy.x509_props.sans.emails == ["pki@example.com"]
    assert (policy.key_props.kty, policy.key_props.key_size) == ("RSA", 2048)
    assert policy.secret_props.contentType == PKCS12

    value, _ = ledger.secret_value(ctx, "imported")
    key, leaf, extra = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
    assert key is not None and pkcs8(key) == pkcs8(material.key)
    assert leaf == material.leaf
    assert extra == [material.ca]


def test_import_pfx_made_by_openssl(
    ledger: Ledger, ctx: Ctx, openssl: Openssl, tmp_path: Path
) -> None:
    material = make_material("EC")
    (tmp_path / "key.pem").write_bytes(pkcs8(material.key, PEM_ENC))
    (tmp_path / "leaf.pem").write_bytes(material.leaf.public_bytes(PEM_ENC))
    (tmp_path / "ca.pem").write_bytes(material.ca.public_bytes(PEM_ENC))
    openssl(
        "pkcs12",
        "-export",
        "-inkey",
        "key.pem",
        "-in",
        "leaf.pem",
        "-certfile",
        "ca.pem",
        "-passout",
        "pass:s3cret!",
        "-out",
        "bundle.pfx",
        cwd=tmp_path,
    )

    cert = ledger.import_certificate(
        ctx, "from-openssl", (tmp_path / "bundle.pfx").read_bytes(), password="s3cret!"
    )

    v = cert.version_of(None)
    check_imported(ledger, v, material)
    assert (v.kty, v.key_size, v.crv) == ("EC", None, "P-256")


def test_import_pem_bundle(ledger: Ledger, ctx: Ctx) -> None:
    material = make_material("EC")

    cert = ledger.import_certificate(ctx, "pem-import", material.pem())

    v = cert.version_of(None)
    check_imported(ledger, v, material)
    assert v.content_type == PEM
    policy = CertificatePolicy.from_kv_json(cert.policy or {})
    assert policy.secret_props.contentType == PEM
    assert (policy.key_props.kty, policy.key_props.crv) == ("EC", "P-256")
    value, _ = ledger.secret_value(ctx, "pem-import")
    assert value.startswith("-----BEGIN PRIVATE KEY-----")
    assert value == material.pem().decode()


@pytest.mark.parametrize("given", ["wrong", None])
def test_import_with_a_wrong_password_names_the_password(
    ledger: Ledger, ctx: Ctx, given: str | None
) -> None:
    data = make_material().pfx(b"the-right-one")
    with pytest.raises(BadParameter, match="password"):
        ledger.import_certificate(ctx, "locked", data, password=given)
    assert ledger.find_certificate("locked") is None


def test_import_with_a_mismatched_key_is_rejected(ledger: Ledger, ctx: Ctx) -> None:
    first, second = make_material(), make_material()
    data = pkcs8(first.key, PEM_ENC) + second.leaf.public_bytes(PEM_ENC)
    with pytest.raises(BadParameter, match="does not match"):
        ledger.import_certificate(ctx, "mismatch", data)
    assert ledger.find_certificate("mismatch") is None


def test_import_of_an_expired_certificate_is_rejected(ledger: Ledger, ctx: Ctx) -> None:
    with pytest.raises(BadParameter, match="expired"):
        ledger.import_certificate(ctx, "stale", make_material(expired=True).pfx())
    assert ledger.find_certificate("stale") is None


def test_import_keeps_a_given_or_stored_policy(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory, all_events: Any
) -> None:
    given = make_policy(issuer="Unknown", subject="CN=given.example.com", content_type=PEM)
    first = ledger.import_certificate(ctx, "kept", make_material().pfx(), policy=given)
    assert first.policy == given.to_kv_json()
    first_version = first.version_of(None)
    assert first_version.content_type == PEM

    again = make_material()
    second = ledger.import_certificate(ctx, "kept", again.pfx())

    assert second.policy == given.to_kv_json()
    v = second.version_of(None)
    assert v.version != first_version.version
    assert v.content_type == PEM
    assert v.policy_fingerprint == given.fingerprint()
    check_imported(ledger, v, again)
    assert second.versions[first_version.version].superseded_at == v.promoted_at
    names = [type(e).__name__ for e in all_events() if type(e).__name__ != "Bootstrapped"]
    assert names == [
        "Registered",
        "PolicyReplaced",
        "CertificateImported",
        "VersionPromoted",
        "CertificateImported",
        "VersionPromoted",
    ]


# -- attributes -------------------------------------------------------------------


def test_attributes_are_updated_per_version(ledger: Ledger, ctx: Ctx, all_events: Any) -> None:
    ledger.import_certificate(ctx, "attrs", make_material().pfx())
    old = ledger.certificate("attrs").version_of(None).version
    ledger.import_certificate(ctx, "attrs", make_material().pfx())
    current = ledger.certificate("attrs").version_of(None).version
    assert old != current

    updated = ledger.update_certificate(ctx, "attrs", enabled=False, tags={"env": "prod"})
    assert updated.version == current
    ledger.update_certificate(ctx, "attrs", old, tags={"env": "legacy", "owner": "ops"})

    cert = ledger.certificate("attrs")
    assert (cert.versions[current].enabled, cert.versions[current].tags) == (
        False,
        {"env": "prod"},
    )
    assert (cert.versions[old].enabled, cert.versions[old].tags) == (
        True,
        {"env": "legacy", "owner": "ops"},
    )
    assert cert.versions[current].updated > cert.versions[current].created

    # Only what was given changes; nothing given records nothing.
    ledger.update_certificate(ctx, "attrs", current, enabled=True)
    ledger.update_certificate(ctx, "attrs", current)
    cert = ledger.certificate("attrs")
    assert (cert.versions[current].enabled, cert.versions[current].tags) == (
        True,
        {"env": "prod"},
    )

    updates = [e for e in all_events() if type(e).__name__ == "AttributesUpdated"]
    assert [(e.version, e.enabled, e.tags) for e in updates] == [
        (current, False, {"env": "prod"}),
        (old, None, {"env": "legacy", "owner": "ops"}),
        (current, True, None),
    ]
    assert all(e.actor == "admin" and e.request_id == ctx.request_id for e in updates)

    with pytest.raises(NotFound):
        ledger.update_certificate(ctx, "attrs", "0" * 32, enabled=False)
