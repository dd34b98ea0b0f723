"""Issuing certificates: self-signed, local CA and CSR signing."""

from __future__ import annotations

import calendar
import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ledger.pki.csr import signature_hash
from ledger.pki.names import CertProfile, profile_extensions, to_x509_name
from ledger.pki.parse import same_public_key

# Backdating tolerates small clock skew between parties.
BACKDATE = timedelta(minutes=5)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC).replace(microsecond=0)


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the end of the target month."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def random_serial() -> int:
    """A random positive 159-bit serial number."""
    return secrets.randbits(159) | (1 << 158)


def _check_serial(serial: int | None) -> int:
    if serial is None:
        return random_serial()
    if serial <= 0 or serial.bit_length() > 159:
        raise ValueError("serial must be a positive integer of at most 159 bits")
    return serial


def self_signed(
    private_key: CertificateIssuerPrivateKeyTypes,
    profile: CertProfile,
    *,
    now: datetime,
    serial: int | None = None,
) -> x509.Certificate:
    """A self-signed end-entity certificate for the profile."""
    moment = _utc(now)
    name = to_x509_name(profile.subject)
    public_key = private_key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(_check_serial(serial))
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(add_months(moment, profile.validity_months))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in profile_extensions(profile, name):
        builder = builder.add_extension(extension, critical=critical)
    builder = builder.add_extension(ski, critical=False).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    return builder.sign(private_key, signature_hash(private_key))


def make_ca(
    private_key: CertificateIssuerPrivateKeyTypes,
    common_name: str,
    *,
    now: datetime,
    years: int = 10,
) -> x509.Certificate:
    """A self-signed CA certificate that may only sign end-entity certificates."""
    if years < 1:
        raise ValueError("years must be at least 1")
    moment = _utc(now)
    name = to_x509_name([("CN", common_name)])
    public_key = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(moment - BACKDATE)
        .not_valid_after(add_months(moment, 12 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(private_key, signature_hash(private_key))


def _issuer_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def sign_csr(
    csr: x509.CertificateSigningRequest,
    *,
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
    profile: CertProfile,
    now: datetime,
) -> x509.Certificate:
    """Issue an end-entity certificate for a CSR, as a local CA would."""
    if not csr.is_signature_valid:
        raise ValueError("the CSR signature is not valid")
    if not same_public_key(ca_key, ca_cert.public_key()):
        raise ValueError("the CA private key does not match the CA certificate")
    moment = _utc(now)
    ca_not_after = ca_cert.not_valid_after_utc
    if moment >= ca_not_after:
        raise ValueError(f"the CA certificate expired on {ca_not_after.isoformat()}")
    not_before = max(moment - BACKDATE, ca_cert.not_valid_before_utc)
    not_after = min(add_months(moment, profile.validity_months), ca_not_after)
    public_key = csr.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in profile_extensions(profile, csr.subject):
        builder = builder.add_extension(extension, critical=critical)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(_issuer_key_identifier(ca_cert), critical=False)
    return builder.sign(ca_key, signature_hash(ca_key))
