"""Private key generation and key descriptions."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)

RSA_KEY_SIZES: tuple[int, ...] = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE = 2048
DEFAULT_CURVE = "P-256"
RSA_PUBLIC_EXPONENT = 65537

# Key Vault curve names -> cryptography curve classes.
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
    "P-256K": ec.SECP256K1,
}
_CURVE_NAMES: dict[str, str] = {cls().name: crv for crv, cls in _CURVES.items()}
_CURVE_BY_SIZE: dict[int, str] = {256: "P-256", 384: "P-384", 521: "P-521"}

SUPPORTED_CURVES: tuple[str, ...] = tuple(_CURVES)


def curve_for_name(crv: str) -> ec.EllipticCurve:
    """Return the cryptography curve for a Key Vault curve name."""
    try:
        return _CURVES[crv]()
    except KeyError:
        raise ValueError(
            f"unsupported EC curve {crv!r}; expected one of {', '.join(SUPPORTED_CURVES)}"
        ) from None


def curve_name(curve: ec.EllipticCurve) -> str:
    """Return the Key Vault name of a cryptography curve."""
    try:
        return _CURVE_NAMES[curve.name]
    except KeyError:
        raise ValueError(f"unsupported EC curve {curve.name}") from None


def generate_private_key(
    kty: str, key_size: int | None = None, curve: str | None = None
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Generate an RSA or EC private key as described by Key Vault key properties."""
    if kty == "RSA":
        if curve is not None:
            raise ValueError("a curve cannot be given for an RSA key")
        size = DEFAULT_RSA_KEY_SIZE if key_size is None else key_size
        if size not in RSA_KEY_SIZES:
            raise ValueError(
                f"unsupported RSA key size {size}; "
                f"expected one of {', '.join(map(str, RSA_KEY_SIZES))}"
            )
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=size)
    if kty == "EC":
        if curve is None:
            if key_size is None:
                curve = DEFAULT_CURVE
            elif key_size in _CURVE_BY_SIZE:
                curve = _CURVE_BY_SIZE[key_size]
            else:
                raise ValueError(f"unsupported EC key size {key_size}")
        ec_curve = curve_for_name(curve)
        if key_size is not None and key_size != ec_curve.key_size:
            raise ValueError(f"key size {key_size} does not match curve {curve}")
        return ec.generate_private_key(ec_curve)
    raise ValueError(f"unsupported key type {kty!r}; expected 'RSA' or 'EC'")


def key_description(
    public_key: PublicKeyTypes | PrivateKeyTypes,
) -> tuple[str, int | None, str | None]:
    """Return (kty, key_size, crv) for an RSA or EC key; key_size is the curve size for EC."""
    if isinstance(public_key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return ("RSA", public_key.key_size, None)
    if isinstance(public_key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ("EC", public_key.curve.key_size, curve_name(public_key.curve))
    raise ValueError(f"unsupported key type {type(public_key).__name__}; expected RSA or EC")
