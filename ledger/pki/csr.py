"""Certificate signing requests."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ledger.pki.names import CertProfile, profile_extensions, to_x509_name


def signature_hash(
    key: CertificateIssuerPrivateKeyTypes,
) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """The hash used to sign with this key; None for EdDSA keys."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        if size >= 512:
            return hashes.SHA512()
        if size >= 384:
            return hashes.SHA384()
        return hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey | dsa.DSAPrivateKey):
        return hashes.SHA256()
    return None


def build_csr(
    private_key: CertificateIssuerPrivateKeyTypes, profile: CertProfile
) -> x509.CertificateSigningRequest:
    """Build and sign a CSR carrying the profile's subject, SAN, KeyUsage and EKU."""
    subject = to_x509_name(profile.subject)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension, critical in profile_extensions(profile, subject):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(private_key, signature_hash(private_key))
