"""Checking a JWS-style signature of a digest with a public key."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


def verify_digest(
    public_key: PublicKeyTypes,
    family: str,
    hash_alg: hashes.HashAlgorithm,
    digest: bytes,
    signature: bytes,
) -> bool:
    """True when `signature` (PKCS#1 v1.5, PSS or raw r||s ECDSA) signs `digest`."""
    prehashed = utils.Prehashed(hash_alg)
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and family.startswith("RSA"):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if family == "RSA"
                else padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
            )
            public_key.verify(signature, digest, pad, prehashed)
            return True
        if isinstance(public_key, ec.EllipticCurvePublicKey) and family == "EC":
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            der = utils.encode_dss_signature(r, s)
            public_key.verify(der, digest, ec.ECDSA(prehashed))
            return True
    except InvalidSignature:
        return False
    return False
