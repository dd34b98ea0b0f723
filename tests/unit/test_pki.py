"""Unit tests for the X.509 layer (in memory only)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.pki import (
    UPN_OID,
    BundleImportError,
    CertificateExpiredError,
    CertificateParseError,
    CertProfile,
    KeyMismatchError,
    add_months,
    build_csr,
    check_validity,
    generate_private_key,
    key_description,
    load_certificates,
    load_import,
    make_ca,
    order_chain,
    public_jwk,
    public_key_der,
    same_public_key,
    self_signed,
    sha256_fingerprint,
    sign_csr,
    signature_hash,
    to_pem,
    to_pkcs12,
    to_x509_name,
    x5t,
)

NOW = datetime(2025, 1, 31, 12, 30, 15, tzinfo=UTC)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER

PROFILE = CertProfile(
    subject=[("CN", "app.example.com"), ("O", "Contoso"), ("C", "US")],
    dns_names=("app.example.com", "*.app.example.com"),
    emails=("ops@example.com",),
    upns=("svc@example.com",),
)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ca(rsa_key2: rsa.RSAPrivateKey) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return rsa_key2, make_ca(rsa_key2, "Test Root CA", now=NOW)


def ext(obj: x509.Certificate | x509.CertificateSigningRequest, cls: type[Any]) -> Any:
    return obj.extensions.get_extension_for_class(cls)


def pem_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(PEM)


def upn_values(san: x509.SubjectAlternativeName) -> list[str]:
    values = []
    for name in san.get_values_for_type(x509.OtherName):
        assert name.type_id == UPN_OID
        assert name.value[0] == 0x0C  # UTF8String
        values.append(name.value[2:].decode("utf-8"))
    return values


class HardwareRSAKey(rsa.RSAPrivateKey):
    """A key whose private half cannot be exported, like an HSM handle."""

    def __init__(self, inner: rsa.RSAPrivateKey) -> None:
        self._inner = inner

    def sign(self, data: Any, padding: Any, algorithm: Any) -> bytes:
        return self._inner.sign(data, padding, algorithm)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._inner.public_key()

    @property
    def key_size(self) -> int:
        return self._inner.key_size

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        return self._inner.decrypt(ciphertext, padding)

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise AssertionError("private numbers must not be read")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise AssertionError("private bytes must not be read")

    def __copy__(self) -> HardwareRSAKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HardwareRSAKey:
        return self


def make_intermediate(
    root_key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    name: str,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(to_x509_name([("CN", name)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )


# --- keygen -------------------------------------------------------------------


@pytest.mark.parametrize("size", [None, 2048, 3072, 4096])
def test_generate_rsa(size: int | None) -> None:
    key = generate_private_key("RSA", size)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == (size or 2048)
    assert key.public_key().public_numbers().e == 65537
    assert key_description(key.public_key()) == ("RSA", size or 2048, None)


@pytest.mark.parametrize(
    ("curve", "size", "expected", "bits"),
    [
        (None, None, ec.SECP256R1, 256),
        ("P-256", None, ec.SECP256R1, 256),
        ("P-384", None, ec.SECP384R1, 384),
        ("P-521", None, ec.SECP521R1, 521),
        ("P-256K", None, ec.SECP256K1, 256),
        (None, 384, ec.SECP384R1, 384),
        ("P-521", 521, ec.SECP521R1, 521),
    ],
)
def test_generate_ec(curve: str | None, size: int | None, expected: type[Any], bits: int) -> None:
    key = generate_private_key("EC", size, curve)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, expected)
    kty, key_size, crv = key_description(key.public_key())
    assert (kty, key_size) == ("EC", bits)
    assert crv == (curve or {256: "P-256", 384: "P-384"}[bits])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("oct",), "unsupported key type"),
        (("rsa",), "unsupported key type"),
        (("RSA", 1024), "unsupported RSA key size"),
        (("RSA", None, "P-256"), "curve cannot be given"),
        (("EC", None, "P-224"), "unsupported EC curve"),
        (("EC", 255), "unsupported EC key size"),
        (("EC", 384, "P-256"), "does not match curve"),
    ],
)
def test_generate_invalid(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_private_key(*args)


def test_key_description_rejects_other_keys() -> None:
    with pytest.raises(ValueError, match="unsupported key type"):
        key_description(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError, match="unsupported EC curve"):
        key_description(ec.generate_private_key(ec.SECP224R1()).public_key())


# --- names and profiles -------------------------------------------------------


def test_to_x509_name_keeps_order() -> None:
    name = to_x509_name([("C", "US"), ("o", "Contoso"), ("CN", "x"), ("DC", "example")])
    oids = [rdn.get_attributes_for_oid(a.oid)[0].oid for rdn in name.rdns for a in rdn]
    assert oids == [
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.COMMON_NAME,
        NameOID.DOMAIN_COMPONENT,
    ]
    assert all(len(rdn) == 1 for rdn in name.rdns)


def test_to_x509_name_all_keys() -> None:
    keys = "CN O OU L ST EMAILADDRESS DC STREET SERIALNUMBER TITLE GIVENNAME SURNAME UID"
    name = to_x509_name([(k, "v") for k in keys.split()] + [("C", "DE")])
    assert len(name) == 14


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": [("XX", "a")]}, "unsupported subject attribute"),
        ({"subject": [("CN", "a")], "key_usage": ("signing",)}, "unsupported key usage"),
        ({"subject": [("CN", "a")], "key_usage": ("encipherOnly",)}, "require keyAgreement"),
        ({"subject": [("CN", "a")], "ekus": ("not.an.oid",)}, "invalid extended key usage"),
        ({"subject": [("CN", "a")], "validity_months": 0}, "at least 1"),
    ],
)
def test_profile_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CertProfile(**kwargs)


# --- CSR ----------------------------------------------------------------------


def test_csr_contents(rsa_key: rsa.RSAPrivateKey) -> None:
    csr = build_csr(rsa_key, PROFILE)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "C=US,O=Contoso,CN=app.example.com"
    assert same_public_key(csr.public_key(), rsa_key)
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    san = ext(csr, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["app.example.com", "*.app.example.com"]
    assert san.value.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert upn_values(san.value) == ["svc@example.com"]
    ku = ext(csr, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.key_encipherment
    assert not ku.value.content_commitment and not ku.value.key_cert_sign
    eku = ext(csr, x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_csr_without_optional_extensions(ec_key: ec.EllipticCurvePrivateKey) -> None:
    profile = CertProfile(subject=[("CN", "bare")], ekus=(), key_usage=())
    csr = build_csr(ec_key, profile)
    assert csr.is_signature_valid
    assert len(csr.extensions) == 0


def test_csr_all_key_usages(ec_key: ec.EllipticCurvePrivateKey) -> None:
    names = (
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
    )
    csr = build_csr(ec_key, CertProfile(subject=[("CN", "x")], key_usage=names))
    ku = ext(csr, x509.KeyUsage).value
    assert ku.content_commitment and ku.data_encipherment and ku.key_agreement
    assert ku.key_cert_sign and ku.crl_sign and ku.encipher_only and not ku.decipher_only


def test_csr_empty_subject_makes_san_critical(ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = build_csr(ec_key, CertProfile(subject=[], dns_names=("a.example",)))
    assert len(csr.subject) == 0
    assert ext(csr, x509.SubjectAlternativeName).critical
    with pytest.raises(ValueError, match="subject or at least one"):
        build_csr(ec_key, CertProfile(subject=[]))


@pytest.mark.parametrize(
    ("curve", "hash_cls"),
    [
        ("P-256", hashes.SHA256),
        ("P-256K", hashes.SHA256),
        ("P-384", hashes.SHA384),
        ("P-521", hashes.SHA512),
    ],
)
def test_csr_hash_by_curve(curve: str, hash_cls: type[hashes.HashAlgorithm]) -> None:
    key = generate_private_key("EC", curve=curve)
    assert isinstance(signature_hash(key), hash_cls)
    csr = build_csr(key, PROFILE)
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hash_cls)


def test_csr_with_hardware_backed_key(rsa_key: rsa.RSAPrivateKey) -> None:
    hsm = HardwareRSAKey(rsa_key)
    csr = build_csr(hsm, PROFILE)
    assert csr.is_signature_valid
    assert same_public_key(csr.public_key(), rsa_key)
    cert = self_signed(hsm, PROFILE, now=NOW)
    cert.verify_directly_issued_by(cert)


# --- self-signed ----------------------------------------------------------------


def test_self_signed_contents(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = self_signed(ec_key, PROFILE, now=NOW)
    assert cert.issuer == cert.subject == to_x509_name(PROFILE.subject)
    cert.verify_directly_issued_by(cert)
    assert 0 < cert.serial_number < 2**159
    assert cert.serial_number.bit_length() == 159
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    assert ext(cert, x509.KeyUsage).critical
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(PROFILE.dns_names)
    assert upn_values(san) == ["svc@example.com"]
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ec_key.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest


def test_self_signed_validity(ec_key: ec.EllipticCurvePrivateKey) -> None:
    profile = CertProfile(subject=[("CN", "x")], validity_months=1)
    cert = self_signed(ec_key, profile, now=NOW)
    assert cert.not_valid_before_utc == datetime(2025, 1, 31, 12, 25, 15, tzinfo=UTC)
    assert cert.not_valid_after_utc == datetime(2025, 2, 28, 12, 30, 15, tzinfo=UTC)
    leap = self_signed(ec_key, profile, now=NOW.replace(year=2024))
    assert leap.not_valid_after_utc == datetime(2024, 2, 29, 12, 30, 15, tzinfo=UTC)
    year = self_signed(ec_key, CertProfile(subject=[("CN", "x")]), now=NOW)
    assert year.not_valid_after_utc == datetime(2026, 1, 31, 12, 30, 15, tzinfo=UTC)


def test_self_signed_converts_timezone_and_serial(ec_key: ec.EllipticCurvePrivateKey) -> None:
    tz = datetime(2025, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    cert = self_signed(ec_key, PROFILE, now=tz, serial=42)
    assert cert.serial_number == 42
    assert cert.not_valid_before_utc == datetime(2025, 1, 1, 0, 55, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        self_signed(ec_key, PROFILE, now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="serial"):
        self_signed(ec_key, PROFILE, now=NOW, serial=0)
    with pytest.raises(ValueError, match="serial"):
        self_signed(ec_key, PROFILE, now=NOW, serial=2**159)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (datetime(2025, 1, 31), 1, datetime(2025, 2, 28)),
        (datetime(2024, 1, 31), 1, datetime(2024, 2, 29)),
        (datetime(2025, 1, 31), 13, datetime(2026, 2, 28)),
        (datetime(2025, 8, 31), 1, datetime(2025, 9, 30)),
        (datetime(2025, 12, 15), 1, datetime(2026, 1, 15)),
        (datetime(2025, 3, 31), 11, datetime(2026, 2, 28)),
        (datetime(2025, 5, 10), 120, datetime(2035, 5, 10)),
    ],
)
def test_add_months(start: datetime, months: int, end: datetime) -> None:
    assert add_months(start, months) == end


# --- CA and CSR signing ---------------------------------------------------------


def test_make_ca(ca: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    _, cert = ca
    cert.verify_directly_issued_by(cert)
    assert cert.subject.rfc4514_string() == "CN=Test Root CA"
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert ku.value.digital_signature
    assert ext(cert, x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc == datetime(2035, 1, 31, 12, 30, 15, tzinfo=UTC)


def test_sign_csr(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate], ec_key: ec.EllipticCurvePrivateKey
) -> None:
    ca_key, ca_cert = ca
    csr = build_csr(ec_key, CertProfile(subject=[("CN", "from-csr")], dns_names=("csr.example",)))
    cert = sign_csr(csr, ca_key=ca_key, ca_cert=ca_cert, profile=PROFILE, now=NOW)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject.rfc4514_string() == "CN=from-csr"
    assert cert.issuer == ca_cert.subject
    assert same_public_key(cert.public_key(), ec_key)
    # SANs come from the profile, not the CSR.
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(PROFILE.dns_names)
    assert ext(cert, x509.BasicConstraints).value.ca is False
    ca_ski = ext(ca_cert, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        ec_key.public_key()
    )
    assert cert.not_valid_after_utc == datetime(2026, 1, 31, 12, 30, 15, tzinfo=UTC)


def test_sign_csr_clamps_to_ca_validity(
    rsa_key2: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    short_ca = make_ca(rsa_key2, "Short CA", now=NOW, years=1)
    profile = CertProfile(subject=[("CN", "x")], validity_months=36)
    cert = sign_csr(
        build_csr(ec_key, profile), ca_key=rsa_key2, ca_cert=short_ca, profile=profile, now=NOW
    )
    assert cert.not_valid_after_utc == short_ca.not_valid_after_utc
    with pytest.raises(ValueError, match="CA certificate expired"):
        sign_csr(
            build_csr(ec_key, profile),
            ca_key=rsa_key2,
            ca_cert=short_ca,
            profile=profile,
            now=NOW + timedelta(days=800),
        )


def test_sign_csr_rejects_bad_signature_and_wrong_ca_key(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    ca_key, ca_cert = ca
    der = bytearray(build_csr(rsa_key, PROFILE).public_bytes(DER))
    der[-5] ^= 0xFF
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(ValueError, match="CSR signature is not valid"):
        sign_csr(tampered, ca_key=ca_key, ca_cert=ca_cert, profile=PROFILE, now=NOW)
    good = build_csr(rsa_key, PROFILE)
    with pytest.raises(ValueError, match="does not match the CA certificate"):
        sign_csr(good, ca_key=rsa_key, ca_cert=ca_cert, profile=PROFILE, now=NOW)


# --- parsing --------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain3(
    rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    root_key = rsa_key2
    root = (
        x509.CertificateBuilder()
        .subject_name(to_x509_name([("CN", "Root")]))
        .issuer_name(to_x509_name([("CN", "Root")]))
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    inter = make_intermediate(root_key, root, rsa_key, "Intermediate")
    csr = build_csr(ec_key, PROFILE)
    leaf = sign_csr(csr, ca_key=rsa_key, ca_cert=inter, profile=PROFILE, now=NOW)
    return leaf, inter, root


def test_load_pem_single_and_many(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    leaf, inter, root = chain3
    assert load_certificates(pem_of(leaf)) == [leaf]
    text = (
        "Bag Attributes\n    friendlyName: x\nsubject=CN = app\n"
        + pem_of(leaf).decode()
        + "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
        + "some trailing text\r\n"
        + pem_of(inter).decode().replace("\n", "\r\n")
        + pem_of(root).decode()
    )
    assert load_certificates(text) == [leaf, inter, root]
    assert load_certificates(text.encode()) == [leaf, inter, root]


def test_load_der_and_base64(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    leaf = chain3[0]
    der = leaf.public_bytes(DER)
    assert load_certificates(der) == [leaf]
    b64 = base64.b64encode(der)
    assert load_certificates(b64) == [leaf]
    assert load_certificates(b64.decode()) == [leaf]
    wrapped = b"\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + b"\n"
    assert load_certificates(b"  " + wrapped) == [leaf]
    assert load_certificates(base64.urlsafe_b64encode(der).rstrip(b"=")) == [leaf]


def test_load_pkcs7(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    certs = list(chain3)
    p7_pem = pkcs7.serialize_certificates(certs, PEM)
    p7_der = pkcs7.serialize_certificates(certs, DER)
    # PKCS#7 holds a DER SET, so the order is not preserved.
    for data in (p7_pem, p7_der, base64.b64encode(p7_der), p7_pem.decode()):
        loaded = load_certificates(data)
        assert len(loaded) == 3 and set(loaded) == set(certs)


GARBAGE: list[bytes | str] = [
    b"",
    "",
    "   \n",
    b"hello world",
    "not a certificate",
    "\ud800",
    b"\x30\x03\x02\x01\x03",
    b"\x30\x82\xff\xff",
    b"\x00" * 64,
    bytes(range(256)),
    base64.b64encode(b"definitely not DER"),
    b"QUJD====",
    b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\nQUJDRA==\n-----END CERTIFICATE-----\n",
    b"-----BEGIN PKCS7-----\nQUJDRA==\n-----END PKCS7-----\n",
    b"-----BEGIN PRIVATE KEY-----\nQUJDRA==\n-----END PRIVATE KEY-----\n",
    b"-----BEGIN CERTIFICATE-----\nMIIB\n",
]


@pytest.mark.parametrize("data", GARBAGE)
def test_load_garbage(data: bytes | str) -> None:
    with pytest.raises(CertificateParseError, match=r"not a PEM, DER or base64 DER X\.509"):
        load_certificates(data)


def test_load_truncated_and_wrong_type(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    der = chain3[0].public_bytes(DER)
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(CertificateParseError):
            load_certificates(der[:cut])
    pem = pem_of(chain3[0])
    with pytest.raises(CertificateParseError):
        load_certificates(pem[:40] + pem[80:])
    with pytest.raises(CertificateParseError):
        load_certificates(12345)  # type: ignore[arg-type]
    csr_der = build_csr(ec.generate_private_key(ec.SECP256R1()), PROFILE).public_bytes(DER)
    with pytest.raises(CertificateParseError):
        load_certificates(csr_der)


@settings(max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), st.text(max_size=512)))
def test_load_fuzz_only_parse_errors(data: bytes | str) -> None:
    with contextlib.suppress(CertificateParseError):
        load_certificates(data)


def test_load_fuzz_mutated_der(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    der = chain3[0].public_bytes(DER)
    rng = random.Random(1234)
    for _ in range(300):
        mutated = bytearray(der)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        with contextlib.suppress(CertificateParseError):
            load_certificates(bytes(mutated))


def test_order_chain_shuffled(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf, inter, root = chain3
    unrelated = self_signed(ec.generate_private_key(ec.SECP256R1()), PROFILE, now=NOW)
    rng = random.Random(7)
    for _ in range(10):
        certs = [leaf, inter, root, unrelated]
        rng.shuffle(certs)
        got_leaf, chain = order_chain(certs, ec_key.public_key())
        assert got_leaf == leaf
        assert chain == [inter, root, unrelated]
    # Duplicates collapse; a private key works as well as a public key.
    assert order_chain([root, leaf, inter, leaf, root], ec_key) == (leaf, [inter, root])
    assert order_chain([leaf], ec_key) == (leaf, [])


def test_order_chain_key_mismatch(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeyMismatchError, match="no certificate matches"):
        order_chain(list(chain3), other.public_key())
    with pytest.raises(ValueError):
        order_chain([], other.public_key())


def test_fingerprints(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    leaf = chain3[0]
    der = leaf.public_bytes(DER)
    expected = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
    assert x5t(leaf) == expected
    assert "=" not in x5t(leaf) and len(x5t(leaf)) == 27
    assert sha256_fingerprint(der) == leaf.fingerprint(hashes.SHA256()).hex()


def test_public_key_helpers(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    spki = rsa_key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_key_der(rsa_key) == spki == public_key_der(rsa_key.public_key())
    assert public_key_der(HardwareRSAKey(rsa_key)) == spki
    assert same_public_key(rsa_key, rsa_key.public_key())
    assert not same_public_key(rsa_key, ec_key)


def test_check_validity(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = self_signed(ec_key, CertProfile(subject=[("CN", "x")], validity_months=1), now=NOW)
    check_validity(cert, NOW)
    check_validity(cert, cert.not_valid_after_utc)
    with pytest.raises(CertificateExpiredError, match="certificate expired on 2025-02-28") as info:
        check_validity(cert, cert.not_valid_after_utc + timedelta(seconds=1))
    assert info.value.expired_at == cert.not_valid_after_utc
    assert isinstance(info.value, ValueError)


# --- bundles --------------------------------------------------------------------


def key_pem(key: Any, fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data: bytes = key.private_bytes(PEM, fmt, enc)
    return data


def assert_no_key_material(message: str, key: Any) -> None:
    pem = key_pem(key, serialization.PrivateFormat.PKCS8).decode()
    for line in pem.splitlines()[1:-1]:
        assert line not in message
    assert "PRIVATE KEY-----" not in message


def test_pkcs12_round_trip(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf, inter, root = chain3
    pfx = to_pkcs12(ec_key, leaf, [root, inter], friendly_name="app cert")
    bundle = load_import(pfx, None)
    assert same_public_key(bundle.key, ec_key)
    assert bundle.cert == leaf
    assert bundle.chain == [inter, root]
    assert load_import(pfx, "").cert == leaf
    assert "PRIVATE" not in repr(bundle)
    loaded = pkcs12.load_pkcs12(pfx, None)
    assert loaded.cert is not None and loaded.cert.friendly_name == b"app cert"
    # Base64 of the PFX, as sent to Key Vault's import API.
    assert load_import(base64.b64encode(pfx), None).cert == leaf


def test_pkcs12_without_key(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    leaf, inter, _ = chain3
    pfx = to_pkcs12(None, leaf, [inter], friendly_name="public only")
    loaded = pkcs12.load_pkcs12(pfx, None)
    # Without a key nothing marks the leaf, so every certificate is "additional".
    assert loaded.key is None
    certs = ([loaded.cert] if loaded.cert else []) + loaded.additional_certs
    assert [c.certificate for c in certs] == [leaf, inter]
    assert certs[0].friendly_name == b"public only"
    with pytest.raises(BundleImportError, match="no private key"):
        load_import(pfx, None)


def test_pkcs12_with_password(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf, inter, root = chain3
    pfx = pkcs12.serialize_key_and_certificates(
        b"x", ec_key, leaf, [inter, root], serialization.BestAvailableEncryption(b"s3cret")
    )
    bundle = load_import(pfx, "s3cret")
    assert bundle.cert == leaf and bundle.chain == [inter, root]
    for wrong in (None, "", "nope"):
        with pytest.raises(BundleImportError, match="wrong or missing password for the PKCS#12"):
            load_import(pfx, wrong)
    # A password offered for an unprotected file is not accepted either.
    with pytest.raises(BundleImportError, match="wrong or missing password"):
        load_import(to_pkcs12(ec_key, leaf, []), "s3cret")


def test_pkcs12_rejects_mismatch_and_other_keys(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf = chain3[0]
    with pytest.raises(ValueError, match="does not match the certificate"):
        to_pkcs12(rsa_key, leaf, [])
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_cert = (
        x509.CertificateBuilder()
        .subject_name(to_x509_name([("CN", "ed")]))
        .issuer_name(to_x509_name([("CN", "ed")]))
        .public_key(ed.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(ed, None)
    )
    with pytest.raises(BundleImportError, match="unsupported private key type"):
        load_import(to_pkcs12(ed, ed_cert, []), None)


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("ec", serialization.PrivateFormat.PKCS8),
        ("ec", serialization.PrivateFormat.TraditionalOpenSSL),
        ("rsa", serialization.PrivateFormat.PKCS8),
        ("rsa", serialization.PrivateFormat.TraditionalOpenSSL),
    ],
)
@pytest.mark.parametrize("password", [None, b"pem-pass"])
def test_pem_import_variants(
    kind: str,
    fmt: serialization.PrivateFormat,
    password: bytes | None,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    leaf, inter, root = chain3
    if kind == "ec":
        key: Any = ec_key
        cert = leaf
        chain = [inter, root]
    else:
        key, cert, chain = rsa_key, inter, [root]
    pem = key_pem(key, fmt, password)
    label = pem.splitlines()[0].decode()
    if password and fmt is serialization.PrivateFormat.PKCS8:
        assert label == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    elif fmt is serialization.PrivateFormat.TraditionalOpenSSL:
        assert label in ("-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----")
    # Chain first, key in the middle, leaf last.
    data = b"".join(pem_of(c) for c in reversed(chain)) + pem + pem_of(cert)
    bundle = load_import(data, password.decode() if password else None)
    assert same_public_key(bundle.key, key)
    assert bundle.cert == cert
    assert bundle.chain == chain
    if password:
        for wrong in (None, "wrong"):
            with pytest.raises(BundleImportError, match="wrong or missing password") as info:
                load_import(data, wrong)
            assert_no_key_material(str(info.value), key)
    else:
        # A password for an unencrypted PEM key is ignored.
        assert load_import(data, "unused").cert == cert


def test_pem_import_refusals(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf, inter, _ = chain3
    ec_pem = key_pem(ec_key, serialization.PrivateFormat.PKCS8)
    cases: list[tuple[bytes, str]] = [
        (pem_of(leaf), "no private key"),
        (ec_pem, "no readable certificate"),
        (ec_pem + pem_of(inter), "does not match any certificate"),
        (key_pem(rsa_key, serialization.PrivateFormat.PKCS8) + pem_of(leaf), "does not match"),
        (ec_pem + ec_pem + pem_of(leaf), "more than one private key"),
        (
            key_pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8)
            + pem_of(leaf),
            "unsupported private key type",
        ),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nQUJD\n-----END OPENSSH PRIVATE KEY-----\n"
            + pem_of(leaf),
            "unsupported private key type",
        ),
        (
            b"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n" + pem_of(leaf),
            "could not be read",
        ),
        (
            key_pem(ec.generate_private_key(ec.SECP224R1()), serialization.PrivateFormat.PKCS8)
            + pem_of(leaf),
            "unsupported EC curve",
        ),
        (b"", "empty"),
        (b"garbage bytes", "not a PKCS#12/PFX file or a PEM bundle"),
        (b"\x30\x03\x02\x01\x03", "wrong or missing password"),
    ]
    for data, message in cases:
        with pytest.raises(BundleImportError, match=message) as info:
            load_import(data, None)
        assert_no_key_material(str(info.value), ec_key)
        assert_no_key_material(str(info.value), rsa_key)


def test_to_pem(
    chain3: tuple[x509.Certificate, x509.Certificate, x509.Certificate],
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf, inter, root = chain3
    text = to_pem(ec_key, leaf, [inter, root])
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert text.count("-----BEGIN CERTIFICATE-----") == 3
    assert load_certificates(text) == [leaf, inter, root]
    bundle = load_import(text.encode(), None)
    assert bundle.cert == leaf and bundle.chain == [inter, root]
    cert_only = to_pem(None, leaf, [])
    assert "PRIVATE KEY" not in cert_only
    assert load_certificates(cert_only) == [leaf]
    with pytest.raises(ValueError, match="does not match"):
        to_pem(ec.generate_private_key(ec.SECP256R1()), leaf, [])


# --- JWK ------------------------------------------------------------------------


def b64url_int(value: str) -> int:
    assert "=" not in value and "+" not in value and "/" not in value
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def test_jwk_rsa(rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = public_jwk(rsa_key.public_key(), "https://vault/keys/k/1", ["sign", "verify"])
    assert set(jwk) == {"kid", "kty", "key_ops", "n", "e"}
    assert jwk["kty"] == "RSA" and jwk["kid"] == "https://vault/keys/k/1"
    assert jwk["key_ops"] == ["sign", "verify"]
    assert jwk["e"] == "AQAB"
    numbers = rsa_key.public_key().public_numbers()
    assert b64url_int(jwk["n"]) == numbers.n
    assert len(base64.urlsafe_b64decode(jwk["n"] + "==")) == 256
    assert public_jwk(rsa_key, "k", [])["n"] == jwk["n"]


@pytest.mark.parametrize(
    ("crv", "size"), [("P-256", 32), ("P-384", 48), ("P-521", 66), ("P-256K", 32)]
)
def test_jwk_ec(crv: str, size: int) -> None:
    # Several keys so leading zero bytes in a coordinate are likely covered.
    for _ in range(8):
        key = generate_private_key("EC", curve=crv)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        jwk = public_jwk(key.public_key(), "kid", ["sign"])
        assert set(jwk) == {"kid", "kty", "key_ops", "crv", "x", "y"}
        assert jwk["kty"] == "EC" and jwk["crv"] == crv
        numbers = key.public_key().public_numbers()
        for coord, value in (("x", numbers.x), ("y", numbers.y)):
            raw = base64.urlsafe_b64decode(jwk[coord] + "=" * (-len(jwk[coord]) % 4))
            assert len(raw) == size
            assert b64url_int(jwk[coord]) == value


def test_jwk_rejects_other_keys() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        public_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), "k", [])
    with pytest.raises(ValueError, match="unsupported EC curve"):
        public_jwk(ec.generate_private_key(ec.SECP224R1()).public_key(), "k", [])


def test_rsa_signature_with_hardware_key_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    hsm = HardwareRSAKey(rsa_key)
    sig = hsm.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    rsa_key.public_key().verify(sig, b"data", padding.PKCS1v15(), hashes.SHA256())
