"""Facts read once from a certificate, shared by the views that show or search them."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from projections.view import js

# cryptography's curve names -> Key Vault's.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp256k1": "P-256K"}
_KEY_USAGE_ATTRS = (
    ("digitalSignature", "digital_signature"),
    ("nonRepudiation", "content_commitment"),
    ("keyEncipherment", "key_encipherment"),
    ("dataEncipherment", "data_encipherment"),
    ("keyAgreement", "key_agreement"),
    ("keyCertSign", "key_cert_sign"),
    ("cRLSign", "crl_sign"),
)


def spki_sha256(public_key_pem: str) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo inside a PEM public key."""
    body = "".join(line for line in public_key_pem.splitlines() if not line.startswith("-----"))
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def _key_facts(public_key: Any) -> tuple[str, int | None, str | None]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = public_key.curve.name
        return "EC", public_key.curve.key_size, _CURVES.get(name, name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "OKP", 256, "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "OKP", 456, "Ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, None
    return type(public_key).__name__, None, None


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str], list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    upns = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3" and other.value[:1] == b"\x0c":
            body = other.value[1:]
            skip = 1 + (body[0] & 0x7F if body[0] & 0x80 else 0)
            upns.append(body[skip:].decode("utf-8", "replace"))
    return (
        [str(v).lower() for v in san.get_values_for_type(x509.DNSName)],
        [str(v) for v in san.get_values_for_type(x509.RFC822Name)],
        upns,
        [str(v) for v in san.get_values_for_type(x509.IPAddress)],
    )


def _key_usage(cert: x509.Certificate) -> list[str]:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = [name for name, attr in _KEY_USAGE_ATTRS if getattr(ku, attr)]
    if ku.key_agreement:
        names += [
            n
            for n, a in (("encipherOnly", ku.encipher_only), ("decipherOnly", ku.decipher_only))
            if a
        ]
    return names


def _ekus(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [oid.dotted_string for oid in ext]


@lru_cache(maxsize=16384)
def x509_facts(cert_der: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the lineage and the inventory views keep of a base64 DER certificate.

    The first dict is the lineage's columns: `certificate` is the JSON the lineage report
    shows; the other keys are the columns the compliance rules read. The second is the
    inventory's: subject, issuer DN and the lower-cased DNS and e-mail SANs it searches.
    """
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_der))
    try:
        hash_algorithm = cert.signature_hash_algorithm
        sig_hash = hash_algorithm.name if hash_algorithm is not None else None
    except UnsupportedAlgorithm:
        sig_hash = "unknown"
    oid = cert.signature_algorithm_oid
    sig_alg = getattr(oid, "_name", None) or oid.dotted_string
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    kty, size, crv = _key_facts(cert.public_key())
    dns, emails, upns, ips = _sans(cert)
    shown = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": dns,
        "emails": emails,
        "upns": upns,
        "ip_addresses": ips,
        "key_usage": _key_usage(cert),
        "ekus": _ekus(cert),
        "signature_algorithm": sig_alg,
    }
    lineage = {
        "certificate": js(shown),
        "issuer_cn": str(cns[0].value) if cns else None,
        "sig_alg": sig_alg,
        "sig_hash": sig_hash,
        "san_count": len(dns) + len(emails) + len(upns) + len(ips),
        "cert_kty": kty,
        "cert_key_size": size,
        "cert_crv": crv,
    }
    inventory = {
        "subject": shown["subject"],
        "issuer_dn": shown["issuer"],
        "sans": js(dns + [e.lower() for e in emails]),
    }
    return lineage, inventory
