"""Public keys as Key Vault JSON Web Keys."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from ledger.pki.keygen import curve_name


def b64url_uint(value: int, length: int | None = None) -> str:
    """Big-endian unsigned integer as base64url without padding."""
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    raw = value.to_bytes(size, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(
    public_key: PublicKeyTypes | PrivateKeyTypes,
    kid: str,
    key_ops: list[str],
    *,
    hsm: bool = False,
) -> dict[str, Any]:
    """The public half of an RSA or EC key as a Key Vault JSON Web Key.

    `hsm` marks a key held by an HSM: its kty is "RSA-HSM" or "EC-HSM", as Key Vault reports.
    """
    suffix = "-HSM" if hsm else ""
    if isinstance(public_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        public_key = public_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {
            "kid": kid,
            "kty": "RSA" + suffix,
            "key_ops": list(key_ops),
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
        }
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        crv = curve_name(public_key.curve)
        size = (public_key.curve.key_size + 7) // 8
        point = public_key.public_numbers()
        return {
            "kid": kid,
            "kty": "EC" + suffix,
            "key_ops": list(key_ops),
            "crv": crv,
            "x": b64url_uint(point.x, size),
            "y": b64url_uint(point.y, size),
        }
    raise ValueError(f"unsupported key type {type(public_key).__name__}; expected RSA or EC")
