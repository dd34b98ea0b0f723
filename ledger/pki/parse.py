"""Loading, matching and inspecting certificates."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

NOT_A_CERTIFICATE = "not a PEM, DER or base64 DER X.509 certificate"

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----",
    re.DOTALL,
)
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"CMS", b"PKCS #7 SIGNED DATA"})
_BASE64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_WHITESPACE = re.compile(rb"\s+")


class CertificateParseError(ValueError):
    """The input holds no readable X.509 certificate."""


class KeyMismatchError(ValueError):
    """No certificate matches the given key."""


class CertificateExpiredError(ValueError):
    """The certificate is past its notAfter date."""

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"certificate expired on {expired_at.isoformat()}")
        self.expired_at = expired_at


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(label, whole block) for each PEM block in the data, in order."""
    return [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def _pem_body(body: bytes) -> bytes:
    # Skip RFC 1421 headers such as Proc-Type; base64 never contains ':'.
    lines = [line for line in body.splitlines() if b":" not in line]
    return base64.b64decode(_WHITESPACE.sub(b"", b"".join(lines)), validate=True)


def _load_der(der: bytes) -> list[x509.Certificate] | None:
    # cryptography raises several exception types on malformed input.
    try:
        return [x509.load_der_x509_certificate(der)]
    except Exception:
        pass
    try:
        return pkcs7.load_der_pkcs7_certificates(der)
    except Exception:
        return None


def _load_pem(data: bytes) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for index, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        label = match.group(1)
        if label not in _CERT_LABELS and label not in _PKCS7_LABELS:
            continue
        try:
            der = _pem_body(match.group(2))
            if label in _CERT_LABELS:
                certs.append(x509.load_der_x509_certificate(der))
            else:
                certs.extend(pkcs7.load_der_pkcs7_certificates(der))
        except Exception:
            raise CertificateParseError(
                f"PEM block {index} ({label.decode('ascii')}) is invalid: {NOT_A_CERTIFICATE}"
            ) from None
    return certs


def decode_base64(data: bytes) -> bytes | None:
    compact = _WHITESPACE.sub(b"", data)
    if not compact or not _BASE64.fullmatch(compact):
        return None
    compact = compact.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Load certificates from PEM (certificates or PKCS#7), DER, base64 DER or PKCS#7 DER."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise CertificateParseError(NOT_A_CERTIFICATE) from None
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise CertificateParseError(f"{NOT_A_CERTIFICATE} (got {type(data).__name__})")
    if b"-----BEGIN " in raw:
        certs = _load_pem(raw)
        if certs:
            return certs
        raise CertificateParseError(f"{NOT_A_CERTIFICATE}: no certificate in the PEM data")
    loaded = _load_der(raw)
    if loaded:
        return loaded
    decoded = decode_base64(raw)
    if decoded is not None:
        loaded = _load_der(decoded)
        if loaded:
            return loaded
    raise CertificateParseError(NOT_A_CERTIFICATE)


def public_key_der(key: PublicKeyTypes | PrivateKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER of a public key, or of a private key's public half."""
    # Private keys (including hardware-backed ones) expose public_key(); public keys do not.
    derive = getattr(key, "public_key", None)
    public = cast(PublicKeyTypes, derive() if callable(derive) else key)
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_public_key(
    a: PublicKeyTypes | PrivateKeyTypes, b: PublicKeyTypes | PrivateKeyTypes
) -> bool:
    """Whether two keys share the same public key."""
    return public_key_der(a) == public_key_der(b)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:
        return False
    return True


def order_chain(
    certs: list[x509.Certificate], public_key: PublicKeyTypes | PrivateKeyTypes
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Split certificates into the one matching the key and the rest ordered towards the root.

    Duplicates are dropped; certificates outside the leaf's path follow in input order.
    """
    unique: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    wanted = public_key_der(public_key)
    leaf = next((c for c in unique if public_key_der(c.public_key()) == wanted), None)
    if leaf is None:
        raise KeyMismatchError("no certificate matches the private key")
    remaining = [c for c in unique if c is not leaf]
    chain: list[x509.Certificate] = []
    current = leaf
    while remaining and current.subject != current.issuer:
        candidates = [c for c in remaining if c.subject == current.issuer]
        if not candidates:
            break
        issuer = next((c for c in candidates if _issued_by(current, c)), candidates[0])
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return leaf, chain + remaining


def x5t(cert: x509.Certificate) -> str:
    """Key Vault's x5t: base64url SHA-1 thumbprint of the DER, without padding."""
    digest = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sha256_fingerprint(cert_or_csr_der: bytes) -> str:
    """Lowercase hex SHA-256 of DER bytes."""
    return hashlib.sha256(cert_or_csr_der).hexdigest()


def check_validity(cert: x509.Certificate, now: datetime) -> None:
    """Raise CertificateExpiredError when ``now`` is past the certificate's notAfter."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    not_after = cert.not_valid_after_utc
    if now.astimezone(UTC) > not_after:
        raise CertificateExpiredError(not_after)
