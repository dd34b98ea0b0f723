"""The managed secret and key of a certificate: export formats, operability and signing."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12

from ledger.application import Ledger
from ledger.domain.certificate import Version
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Forbidden
from ledger.worker import Worker
from tests.integration.conftest import PEM, Clock, Openssl, PolicyFactory

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", re.DOTALL)


def spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(DER, SPKI)
    return data


def pkcs8(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return data


def leaf_of(v: Version) -> x509.Certificate:
    assert v.cert_der is not None
    return x509.load_der_x509_certificate(base64.b64decode(v.cert_der))


def issue(
    ledger: Ledger, ctx: Ctx, worker: Worker, name: str, policy: Any
) -> tuple[Version, x509.Certificate]:
    ledger.create_certificate(ctx, name, policy)
    cert = worker.drive(name)
    assert cert.operation is not None and cert.operation.status == "completed"
    v = cert.version_of(None)
    return v, leaf_of(v)


# -- the secret value ------------------------------------------------------------


@pytest.mark.parametrize("kty", ["EC", "RSA"])
def test_pkcs12_secret_holds_the_matching_key(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    openssl: Openssl,
    tmp_path: Path,
    kty: str,
) -> None:
    v, leaf = issue(ledger, ctx, worker, "bundle", make_policy(kty=kty))

    value, served = ledger.secret_value(ctx, "bundle")

    assert served.version == v.version
    assert served.content_type == "application/x-pkcs12"
    pfx = base64.b64decode(value, validate=True)
    key, cert, extra = pkcs12.load_key_and_certificates(pfx, None)
    assert cert == leaf
    assert extra == []
    assert key is not None
    assert spki(key.public_key()) == spki(leaf.public_key())
    assert v.key_id is not None
    assert pkcs8(key) == pkcs8(ledger.custody.export_private_key(v.key_id))
    assert isinstance(key, rsa.RSAPrivateKey if kty == "RSA" else ec.EllipticCurvePrivateKey)

    pfx_path = tmp_path / "secret.pfx"
    pfx_path.write_bytes(pfx)
    text = openssl("pkcs12", "-in", pfx_path, "-nodes", "-passin", "pass:")
    assert "friendlyName: bundle" in text
    blocks = {m.group(1): m.group(0) for m in PEM_BLOCK.finditer(text)}
    assert set(blocks) == {"PRIVATE KEY", "CERTIFICATE"}
    from_openssl = serialization.load_pem_private_key(blocks["PRIVATE KEY"].encode(), None)
    assert pkcs8(from_openssl) == pkcs8(key)
    assert x509.load_pem_x509_certificate(blocks["CERTIFICATE"].encode()) == leaf


def test_pem_secret_is_pkcs8_key_then_chain(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    issuer = ledger.set_issuer(ctx, "corp", provider="LocalCA")
    ca = x509.load_pem_x509_certificate(issuer.provider_state["ca_cert_pem"].encode())
    v, leaf = issue(
        ledger, ctx, worker, "pem", make_policy(issuer="corp", content_type=PEM, kty="RSA")
    )

    value, served = ledger.secret_value(ctx, "pem")

    assert served.content_type == PEM
    assert served.version == v.version
    blocks = [(m.group(1), m.group(0)) for m in PEM_BLOCK.finditer(value)]
    assert "".join(b for _, b in blocks) == value
    assert [label for label, _ in blocks] == ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]
    key = serialization.load_pem_private_key(blocks[0][1].encode(), None)
    assert spki(key.public_key()) == spki(leaf.public_key())
    assert x509.load_pem_x509_certificate(blocks[1][1].encode()) == leaf
    assert x509.load_pem_x509_certificate(blocks[2][1].encode()) == ca


@pytest.mark.parametrize("content_type", ["application/x-pkcs12", PEM])
def test_non_exportable_secret_holds_no_private_key(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    openssl: Openssl,
    tmp_path: Path,
    content_type: str,
) -> None:
    v, leaf = issue(
        ledger,
        ctx,
        worker,
        "sealed",
        make_policy(exportable=False, content_type=content_type),
    )
    assert v.exportable is False

    value, _ = ledger.secret_value(ctx, "sealed")

    if content_type == PEM:
        assert "PRIVATE KEY" not in value
        assert x509.load_pem_x509_certificates(value.encode()) == [leaf]
    else:
        pfx = base64.b64decode(value, validate=True)
        key, cert, extra = pkcs12.load_key_and_certificates(pfx, None)
        assert key is None
        assert [c for c in (cert, *extra) if c is not None] == [leaf]
        pfx_path = tmp_path / "sealed.pfx"
        pfx_path.write_bytes(pfx)
        text = openssl("pkcs12", "-in", pfx_path, "-nodes", "-passin", "pass:")
        assert "PRIVATE KEY" not in text
        assert "BEGIN CERTIFICATE" in text
    # The key is still usable for signing inside custody.
    digest = hashlib.sha256(b"sealed").digest()
    signature, _ = ledger.sign(ctx, "sealed", None, "ES256", digest)
    assert len(signature) == 64


# -- operability --------------------------------------------------------------------


def test_disabled_version_is_inoperable_until_reenabled(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    v, _ = issue(ledger, ctx, worker, "toggle", make_policy())
    digest = hashlib.sha256(b"payload").digest()

    updated = ledger.update_certificate(ctx, "toggle", enabled=False)
    assert updated.enabled is False

    with pytest.raises(Forbidden, match="is disabled") as secret_error:
        ledger.secret_value(ctx, "toggle")
    assert "secret is inoperable" in secret_error.value.message
    with pytest.raises(Forbidden, match="is disabled") as key_error:
        ledger.sign(ctx, "toggle", v.version, "ES256", digest)
    assert "key is inoperable" in key_error.value.message

    ledger.update_certificate(ctx, "toggle", v.version, enabled=True)
    assert ledger.secret_value(ctx, "toggle")[1].version == v.version
    assert len(ledger.sign(ctx, "toggle", None, "ES256", digest)[0]) == 64


def test_expired_version_is_inoperable(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory, clock: Clock
) -> None:
    v, leaf = issue(ledger, ctx, worker, "short", make_policy(validity_months=1))
    digest = hashlib.sha256(b"payload").digest()
    assert ledger.secret_value(ctx, "short")[1].version == v.version

    clock.offset = leaf.not_valid_after_utc - datetime.now(UTC) + timedelta(seconds=5)

    window = re.escape(
        f"outside its validity window ({leaf.not_valid_before_utc.isoformat()} "
        f"to {leaf.not_valid_after_utc.isoformat()})"
    )
    with pytest.raises(Forbidden, match=window):
        ledger.secret_value(ctx, "short")
    with pytest.raises(Forbidden, match=window):
        ledger.sign(ctx, "short", None, "ES256", digest)

    clock.offset = leaf.not_valid_after_utc - datetime.now(UTC) - timedelta(minutes=1)
    assert len(ledger.sign(ctx, "short", None, "ES256", digest)[0]) == 64
    assert ledger.secret_value(ctx, "short")[1].version == v.version


# -- signing --------------------------------------------------------------------------


def verify(public: Any, algorithm: str, signature: bytes, digest: bytes) -> None:
    prehashed = utils.Prehashed(hashes.SHA256())
    if algorithm == "ES256":
        assert len(signature) == 64
        der = utils.encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, digest, ec.ECDSA(prehashed))
    elif algorithm == "RS256":
        public.verify(signature, digest, padding.PKCS1v15(), prehashed)
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(signature, digest, pss, prehashed)


@pytest.mark.parametrize(
    ("kty", "algorithm"), [("EC", "ES256"), ("RSA", "RS256"), ("RSA", "PS256")]
)
def test_sign_verifies_with_the_certificate_key(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    kty: str,
    algorithm: str,
) -> None:
    v, leaf = issue(ledger, ctx, worker, "signer", make_policy(kty=kty))
    digest = hashlib.sha256(b"the message to sign").digest()

    signature, used = ledger.sign(ctx, "signer", None, algorithm, digest)

    assert used.version == v.version
    verify(leaf.public_key(), algorithm, signature, digest)
    other = hashlib.sha256(b"another message").digest()
    with pytest.raises(InvalidSignature):
        verify(leaf.public_key(), algorithm, signature, other)


def test_sign_checks_the_digest_length(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    issue(ledger, ctx, worker, "signer", make_policy())
    with pytest.raises(BadParameter, match="a ES256 digest is 32 bytes, not 48"):
        ledger.sign(ctx, "signer", None, "ES256", hashlib.sha384(b"x").digest())
    with pytest.raises(BadParameter, match="not 0"):
        ledger.sign(ctx, "signer", None, "ES256", b"")


@pytest.mark.parametrize(
    ("kty", "curve", "algorithm", "digest_size"),
    [
        ("RSA", None, "ES256", 32),
        ("EC", "P-256", "RS256", 32),
        ("EC", "P-256", "PS256", 32),
        ("EC", "P-256", "ES384", 48),
        ("EC", "P-256", "ES256K", 32),
        ("EC", "P-384", "ES256", 32),
        ("EC", "P-256", "HS256", 32),
    ],
)
def test_sign_rejects_an_algorithm_that_does_not_fit_the_key(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    kty: str,
    curve: str | None,
    algorithm: str,
    digest_size: int,
) -> None:
    issue(ledger, ctx, worker, "signer", make_policy(kty=kty, curve=curve))
    with pytest.raises(BadParameter, match=f"alg: .*{algorithm}"):
        ledger.sign(ctx, "signer", None, algorithm, b"\x01" * digest_size)
