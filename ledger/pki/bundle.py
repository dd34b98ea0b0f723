"""PKCS#12 and PEM bundles: export and import."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ledger.pki.keygen import key_description
from ledger.pki.parse import (
    CertificateParseError,
    KeyMismatchError,
    decode_base64,
    load_certificates,
    order_chain,
    pem_blocks,
    same_public_key,
)

WRONG_PKCS12_PASSWORD = "wrong or missing password for the PKCS#12 file"
WRONG_PEM_PASSWORD = "wrong or missing password for the PEM private key"

_PEM_KEY_LABELS = frozenset(
    {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}
)


class BundleImportError(ValueError):
    """A certificate bundle offered for import is unreadable or inconsistent."""


@dataclass(frozen=True)
class ImportedBundle:
    """The private key, its certificate and the rest of the chain (leaf to root)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]

    def __repr__(self) -> str:
        return (
            f"ImportedBundle(cert={self.cert.subject.rfc4514_string()!r}, chain={len(self.chain)})"
        )


def _check_key_matches(key: PrivateKeyTypes | None, cert: x509.Certificate) -> None:
    if key is not None and not same_public_key(key, cert.public_key()):
        raise ValueError("the private key does not match the certificate")


_PKCS12_KEYS = (
    rsa.RSAPrivateKey,
    dsa.DSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def to_pkcs12(
    key: PrivateKeyTypes | None,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    friendly_name: str | None = None,
) -> bytes:
    """A PFX without password holding the key (if any), the certificate and its chain."""
    if key is not None and not isinstance(key, _PKCS12_KEYS):
        raise ValueError(f"a {type(key).__name__} cannot be stored in PKCS#12")
    _check_key_matches(key, cert)
    name = friendly_name.encode("utf-8") if friendly_name else None
    return pkcs12.serialize_key_and_certificates(
        name, key, cert, list(chain) or None, serialization.NoEncryption()
    )


def to_pem(
    key: PrivateKeyTypes | None,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> str:
    """Unencrypted PKCS#8 key PEM (if any), then the certificate, then the chain."""
    _check_key_matches(key, cert)
    parts: list[bytes] = []
    if key is not None:
        parts.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    parts.extend(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
    return b"".join(parts).decode("ascii")


def _looks_like_pkcs12(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), ... }
    if len(data) < 5 or data[0] != 0x30:
        return False
    first = data[1]
    offset = 2 if first <= 0x80 else 2 + (first & 0x7F)
    return data[offset : offset + 3] == b"\x02\x01\x03"


def _load_pkcs12(
    data: bytes, password: str | None
) -> tuple[PrivateKeyTypes | None, list[x509.Certificate]]:
    candidates: list[bytes | None] = [None, b""] if not password else [password.encode("utf-8")]
    loaded: pkcs12.PKCS12KeyAndCertificates | None = None
    for candidate in candidates:
        try:
            loaded = pkcs12.load_pkcs12(data, candidate)
        except UnsupportedAlgorithm:
            raise BundleImportError("the PKCS#12 file uses an unsupported algorithm") from None
        except (ValueError, TypeError):
            continue
        break
    if loaded is None:
        raise BundleImportError(WRONG_PKCS12_PASSWORD)
    certs = [loaded.cert.certificate] if loaded.cert is not None else []
    certs.extend(c.certificate for c in loaded.additional_certs)
    return loaded.key, certs


def _load_pem_key(label: str, block: bytes, password: str | None) -> PrivateKeyTypes:
    encrypted = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
    secret: bytes | None = None
    if encrypted:
        if password is None:
            raise BundleImportError(WRONG_PEM_PASSWORD)
        secret = password.encode("utf-8")
    try:
        return serialization.load_pem_private_key(block, secret)
    except UnsupportedAlgorithm:
        raise BundleImportError(
            f"the PEM private key ({label}) uses an unsupported algorithm or key type"
        ) from None
    except (ValueError, TypeError):
        if encrypted:
            raise BundleImportError(WRONG_PEM_PASSWORD) from None
        raise BundleImportError(f"the PEM private key ({label}) could not be read") from None


def _load_pem_bundle(
    data: bytes, password: str | None
) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    key_blocks = [(label, block) for label, block in pem_blocks(data) if "PRIVATE KEY" in label]
    if not key_blocks:
        raise BundleImportError("the PEM bundle contains no private key")
    if len(key_blocks) > 1:
        raise BundleImportError("the PEM bundle contains more than one private key")
    label, block = key_blocks[0]
    if label not in _PEM_KEY_LABELS:
        raise BundleImportError(
            f"unsupported private key type ({label}); only RSA and EC keys are supported"
        )
    key = _load_pem_key(label, block, password)
    try:
        certs = load_certificates(data)
    except CertificateParseError as exc:
        raise BundleImportError(
            f"the PEM bundle contains no readable certificate ({exc})"
        ) from None
    return key, certs


def _assemble(key: PrivateKeyTypes | None, certs: list[x509.Certificate]) -> ImportedBundle:
    if key is None:
        raise BundleImportError("the bundle contains no private key")
    if not certs:
        raise BundleImportError("the bundle contains no certificate")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BundleImportError(
            f"unsupported private key type {type(key).__name__}; only RSA and EC keys are supported"
        )
    try:
        key_description(key)
    except ValueError as exc:
        raise BundleImportError(str(exc)) from None
    try:
        leaf, chain = order_chain(certs, key)
    except KeyMismatchError:
        raise BundleImportError(
            "the private key does not match any certificate in the bundle"
        ) from None
    return ImportedBundle(key=key, cert=leaf, chain=chain)


def load_import(data: bytes, password: str | None) -> ImportedBundle:
    """Read a PKCS#12/PFX file or a PEM bundle (private key plus certificates) for import."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    data = bytes(data)
    if not data.strip():
        raise BundleImportError("the certificate bundle is empty")
    if b"-----BEGIN " in data:
        return _assemble(*_load_pem_bundle(data, password))
    if not _looks_like_pkcs12(data):
        decoded = decode_base64(data)
        if decoded is not None and b"-----BEGIN " in decoded:
            return _assemble(*_load_pem_bundle(decoded, password))
        if decoded is None or not _looks_like_pkcs12(decoded):
            raise BundleImportError(
                "not a PKCS#12/PFX file or a PEM bundle with a private key and certificate"
            )
        data = decoded
    return _assemble(*_load_pkcs12(data, password))
