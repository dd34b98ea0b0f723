"""X.509 layer: keys, CSRs, certificates, bundles and JWKs."""

from __future__ import annotations

from ledger.pki.bundle import (
    BundleImportError,
    ImportedBundle,
    load_import,
    to_pem,
    to_pkcs12,
)
from ledger.pki.csr import build_csr, signature_hash
from ledger.pki.issue import add_months, make_ca, self_signed, sign_csr
from ledger.pki.jwk import public_jwk
from ledger.pki.keygen import (
    SUPPORTED_CURVES,
    generate_private_key,
    key_description,
)
from ledger.pki.names import UPN_OID, CertProfile, to_x509_name
from ledger.pki.parse import (
    CertificateExpiredError,
    CertificateParseError,
    KeyMismatchError,
    check_validity,
    load_certificates,
    order_chain,
    public_key_der,
    same_public_key,
    sha256_fingerprint,
    x5t,
)

__all__ = [
    "SUPPORTED_CURVES",
    "UPN_OID",
    "BundleImportError",
    "CertProfile",
    "CertificateExpiredError",
    "CertificateParseError",
    "ImportedBundle",
    "KeyMismatchError",
    "add_months",
    "build_csr",
    "check_validity",
    "generate_private_key",
    "key_description",
    "load_certificates",
    "load_import",
    "make_ca",
    "order_chain",
    "public_jwk",
    "public_key_der",
    "same_public_key",
    "self_signed",
    "sha256_fingerprint",
    "sign_csr",
    "signature_hash",
    "to_pem",
    "to_pkcs12",
    "to_x509_name",
    "x5t",
]
