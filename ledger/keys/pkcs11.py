"""PKCS#11 key custody: key pairs generated, kept and used on a hardware token.

Private keys are made on the token as token objects that are sensitive and not
extractable, and never leave it: `signer` returns a `cryptography` private-key
object whose `sign` runs on the token. Hashing is done on the host; the token
signs the digest (CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS, CKM_ECDSA).
The ledger keeps only each key's id and owner (an `HsmKeyRow`, saved with the
event that references the key). `python-pkcs11` is imported on first use.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ledger.keys.custody import CustodyError, KeyHandle, OwnerExport, Sealed
from ledger.keys.store import CustodyRow, HsmKeyRow
from ledger.pki.keygen import (
    DEFAULT_CURVE,
    DEFAULT_RSA_KEY_SIZE,
    RSA_KEY_SIZES,
    RSA_PUBLIC_EXPONENT,
    curve_for_name,
)

if TYPE_CHECKING:
    from cryptography.utils import Buffer
    from pkcs11 import Session, SignMixin

HSM_PREFIX = "hsm:"
LABEL_PREFIX = "certledger:"
T = TypeVar("T")

# DER of DigestInfo up to the digest (RFC 8017 section 9.2, note 1).
DIGEST_INFO_PREFIXES: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# CKM_RSA_PKCS_PSS parameters: hash mechanism names (the MGF1 names drop the underscore).
PSS_HASHES = {
    "sha1": "SHA_1",
    "sha224": "SHA224",
    "sha256": "SHA256",
    "sha384": "SHA384",
    "sha512": "SHA512",
}
# Curve names as the token's EC_PARAMS spell them (named curve OIDs).
_CURVE_OIDS = {
    "P-256": "1.2.840.10045.3.1.7",
    "P-384": "1.3.132.0.34",
    "P-521": "1.3.132.0.35",
    "P-256K": "1.3.132.0.10",
}


class KeyNotExportable(CustodyError):
    """An HSM key was asked for its private bytes."""


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the token is: the module (shared library), the token's label and the user PIN."""

    module: Path
    token_label: str
    pin: str = field(repr=False)


class HsmKeyIndex(Protocol):
    """Which HSM key ids belong to an owner (kept in the ledger's database)."""

    def hsm_key_ids(self, owner: str) -> list[str]: ...


def is_hsm_key_id(key_id: str) -> bool:
    return key_id.startswith(HSM_PREFIX)


def _cka_id(key_id: str) -> bytes:
    if not is_hsm_key_id(key_id):
        raise CustodyError(f"key {key_id!r} is not an HSM key")
    try:
        return uuid.UUID(hex=key_id.removeprefix(HSM_PREFIX)).bytes
    except ValueError:
        raise CustodyError(f"key {key_id!r} is not a valid HSM key id") from None


# -- the module, shared by every custody of the process ----------------------

_modules_lock = threading.Lock()
_module_users: dict[str, int] = {}


def _acquire_module(path: str) -> Any:
    """The initialised module; finalised again when its last user releases it."""
    import pkcs11

    with _modules_lock:
        try:
            lib = pkcs11.lib(path)
        except pkcs11.PKCS11Error as exc:
            raise CustodyError(
                f"cannot load the PKCS#11 module {path} (CERTLEDGER_PKCS11_MODULE): {exc}"
            ) from exc
        _module_users[path] = _module_users.get(path, 0) + 1
        return lib


def _release_module(path: str, lib: Any) -> None:
    import pkcs11

    with _modules_lock:
        users = _module_users.get(path, 0) - 1
        if users > 0:
            _module_users[path] = users
            return
        _module_users.pop(path, None)
        # A finalised module re-reads its configuration and tokens when next initialised.
        if lib.initialized:
            with contextlib.suppress(pkcs11.PKCS11Error):
                lib.finalize()


# -- the token ---------------------------------------------------------------


class Pkcs11Token:
    """One logged-in read/write session on the configured token, reopened when lost."""

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._lib: Any = None
        self._session: Session | None = None
        self._private: dict[bytes, SignMixin] = {}
        self._closed = False

    @property
    def label(self) -> str:
        return self.config.token_label

    def _connect(self) -> Session:
        from pkcs11 import exceptions as e

        if self._lib is None:
            self._lib = _acquire_module(str(self.config.module))
        label = self.config.token_label
        try:
            token = self._lib.get_token(token_label=label)
        except e.NoSuchToken:
            found = sorted(repr(t.label) for t in self._lib.get_tokens() if t.label)
            raise CustodyError(
                f"no token labelled {label!r} in PKCS#11 module {self.config.module} "
                f"(CERTLEDGER_PKCS11_TOKEN); tokens present: {', '.join(found) or 'none'}"
            ) from None
        except e.MultipleTokensReturned:
            raise CustodyError(
                f"several tokens are labelled {label!r} in {self.config.module}; "
                "give each token a distinct label"
            ) from None
        try:
            session: Session = token.open(rw=True, user_pin=self.config.pin)
        except e.UserAlreadyLoggedIn:
            # Login is per process and token: another session of this process holds it.
            session = token.open(rw=True)
        except (e.PinIncorrect, e.PinInvalid, e.PinLenRange):
            raise CustodyError(
                f"token {label!r} refused the user PIN "
                "(CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE)"
            ) from None
        except e.PinLocked:
            raise CustodyError(
                f"the user PIN of token {label!r} is locked after too many wrong PINs; "
                "the token's security officer must reset it"
            ) from None
        except e.UserPinNotInitialized:
            raise CustodyError(f"token {label!r} has no user PIN set yet") from None
        except e.PKCS11Error as exc:
            raise CustodyError(
                f"cannot open a session on token {label!r}: {type(exc).__name__}"
            ) from exc
        return session

    def run(self, action: Callable[[Session], T]) -> T:
        """Run `action` with the session, reconnecting once if the token dropped it."""
        from pkcs11 import exceptions as e

        lost = (
            e.SessionHandleInvalid,
            e.SessionClosed,
            e.DeviceRemoved,
            e.TokenNotPresent,
            e.UserNotLoggedIn,
            e.ObjectHandleInvalid,
            e.KeyHandleInvalid,
        )
        with self._lock:
            for attempt in (1, 2):
                if self._closed:
                    raise CustodyError("the PKCS#11 key custody is closed")
                if self._session is None:
                    self._session = self._connect()
                    self._private.clear()
                try:
                    return action(self._session)
                except lost as exc:
                    self._drop_session()
                    if attempt == 2:
                        raise CustodyError(
                            f"lost the session to token {self.label!r}: {type(exc).__name__}"
                        ) from exc
                except e.PKCS11Error as exc:
                    raise CustodyError(
                        f"token {self.label!r} failed: {type(exc).__name__} {exc}".rstrip()
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def private_key(self, session: Session, key_id: str) -> SignMixin:
        from pkcs11 import ObjectClass
        from pkcs11 import exceptions as e

        cka_id = _cka_id(key_id)
        key = self._private.get(cka_id)
        if key is None:
            try:
                found = session.get_key(ObjectClass.PRIVATE_KEY, id=cka_id)
            except e.NoSuchKey:
                raise CustodyError(
                    f"HSM key {key_id!r} is not on token {self.label!r}: "
                    "it was destroyed, or the token is not the one that made it"
                ) from None
            key = cast("SignMixin", found)
            self._private[cka_id] = key
        return key

    def sign(self, key_id: str, mechanism: Any, payload: bytes, param: Any = None) -> bytes:
        def act(session: Session) -> bytes:
            key = self.private_key(session, key_id)
            return bytes(key.sign(payload, mechanism=mechanism, mechanism_param=param))

        return self.run(act)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._private.pop(_cka_id(key_id), None)

    def _drop_session(self) -> None:
        session, self._session = self._session, None
        self._private.clear()
        if session is not None:
            from pkcs11 import PKCS11Error

            with contextlib.suppress(PKCS11Error):
                session.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop_session()
            if self._lib is not None:
                lib, self._lib = self._lib, None
                _release_module(str(self.config.module), lib)


# -- signers -----------------------------------------------------------------


def _digest(
    data: Buffer, algorithm: utils.Prehashed | hashes.HashAlgorithm
) -> tuple[bytes, hashes.HashAlgorithm]:
    """The digest to sign and its hash: hashed here unless already `Prehashed`."""
    if isinstance(algorithm, utils.Prehashed):
        if len(data) != algorithm.digest_size:
            raise ValueError(
                f"a prehashed {algorithm._algorithm.name} digest is "
                f"{algorithm.digest_size} bytes, not {len(data)}"
            )
        return bytes(data), algorithm._algorithm
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize(), algorithm


def _not_exportable(key_id: str) -> KeyNotExportable:
    return KeyNotExportable(
        f"the private key {key_id} is held by a PKCS#11 token and cannot be exported"
    )


_K = TypeVar("_K", bound="_OnToken")


class _OnToken:
    """What every key on the token shares: no private bytes, and copies are the key."""

    key_id: str

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        raise _not_exportable(self.key_id)

    def __copy__(self: _K) -> _K:
        return self

    def __deepcopy__(self: _K, memo: dict[int, Any]) -> _K:
        return self


class HsmRsaKey(_OnToken, rsa.RSAPrivateKey):
    """An RSA private key on the token: signs there, never yields its private numbers."""

    def __init__(self, token: Pkcs11Token, key_id: str, public: rsa.RSAPublicKey) -> None:
        self._token = token
        self.key_id = key_id
        self._public = public

    def __repr__(self) -> str:
        return f"<HsmRsaKey {self.key_id} {self.key_size} bits on {self._token.label!r}>"

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: Buffer,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | Any,
    ) -> bytes:
        from pkcs11 import MGF, Mechanism

        no_digest_info = getattr(utils, "NoDigestInfo", None)
        if no_digest_info is not None and isinstance(algorithm, no_digest_info):
            if not isinstance(padding, _PKCS1v15):
                raise UnsupportedAlgorithm("NoDigestInfo signs with PKCS#1 v1.5 padding only")
            return self._token.sign(self.key_id, Mechanism.RSA_PKCS, bytes(data))
        digest, hash_alg = _digest(data, algorithm)
        if isinstance(padding, _PKCS1v15):
            prefix = DIGEST_INFO_PREFIXES.get(hash_alg.name)
            if prefix is None:
                raise UnsupportedAlgorithm(f"{hash_alg.name} is not supported for RSA on the token")
            return self._token.sign(self.key_id, Mechanism.RSA_PKCS, prefix + digest)
        if isinstance(padding, _PSS):
            mgf = padding.mgf
            mgf_hash = getattr(mgf, "_algorithm", None)
            if not isinstance(mgf, _MGF1) or not isinstance(mgf_hash, hashes.HashAlgorithm):
                raise UnsupportedAlgorithm("PSS on the token needs MGF1")
            if hash_alg.name not in PSS_HASHES or mgf_hash.name not in PSS_HASHES:
                raise UnsupportedAlgorithm(f"{hash_alg.name} is not supported for PSS on the token")
            param = (
                Mechanism[PSS_HASHES[hash_alg.name]],
                MGF[PSS_HASHES[mgf_hash.name].replace("_", "")],
                self._salt_length(padding, hash_alg),
            )
            return self._token.sign(self.key_id, Mechanism.RSA_PKCS_PSS, digest, param)
        raise UnsupportedAlgorithm(f"padding {padding.name} is not supported on the token")

    def _salt_length(self, pss: padding.PSS, hash_alg: hashes.HashAlgorithm) -> int:
        salt = pss._salt_length
        if salt is padding.PSS.MAX_LENGTH:
            return padding.calculate_max_pss_salt_length(self._public, hash_alg)
        if salt is padding.PSS.DIGEST_LENGTH:
            return hash_alg.digest_size
        if isinstance(salt, int) and salt >= 0:
            return salt
        raise ValueError("a PSS signature needs a salt length (AUTO is for verification)")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise UnsupportedAlgorithm("HSM keys of certificates sign only; they do not decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise _not_exportable(self.key_id)


class HsmEcKey(_OnToken, ec.EllipticCurvePrivateKey):
    """An EC private key on the token: ECDSA there (digest made here), no private value."""

    def __init__(self, token: Pkcs11Token, key_id: str, public: ec.EllipticCurvePublicKey) -> None:
        self._token = token
        self.key_id = key_id
        self._public = public

    def __repr__(self) -> str:
        return f"<HsmEcKey {self.key_id} {self.curve.name} on {self._token.label!r}>"

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        from pkcs11 import Mechanism

        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("EC keys on the token sign with ECDSA only")
        if getattr(signature_algorithm, "deterministic_signing", False):
            raise UnsupportedAlgorithm("deterministic ECDSA (RFC 6979) is not done on the token")
        digest, _ = _digest(data, signature_algorithm.algorithm)
        raw = self._token.sign(self.key_id, Mechanism.ECDSA, digest)
        half = len(raw) // 2
        if half == 0 or len(raw) != 2 * half:
            raise CustodyError(f"token {self._token.label!r} returned a malformed ECDSA signature")
        r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        return utils.encode_dss_signature(r, s)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise UnsupportedAlgorithm("HSM keys of certificates sign only; no key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise _not_exportable(self.key_id)


_PKCS1v15 = padding.PKCS1v15
_PSS = padding.PSS
_MGF1 = padding.MGF1

HsmKey = HsmRsaKey | HsmEcKey


# -- reading public keys off the token ----------------------------------------


def _der_octet_string(data: bytes) -> bytes:
    """The content of a DER OCTET STRING (EC_POINT as most tokens return it)."""
    if len(data) < 2 or data[0] != 0x04:
        raise ValueError("not an OCTET STRING")
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    if offset + length != len(data):
        raise ValueError("bad OCTET STRING length")
    return data[offset:]


def ec_public_key(curve: ec.EllipticCurve, ec_point: bytes) -> ec.EllipticCurvePublicKey:
    """The public key from CKA_EC_POINT: DER-wrapped or raw uncompressed point."""
    size = (curve.key_size + 7) // 8
    point = ec_point if len(ec_point) == 2 * size + 1 else _der_octet_string(ec_point)
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _curve_from_params(params: bytes) -> ec.EllipticCurve:
    from pkcs11.util.ec import encode_named_curve_parameters

    for crv, oid in _CURVE_OIDS.items():
        if encode_named_curve_parameters(oid) == params:
            return curve_for_name(crv)
    raise CustodyError("the token's EC key is on a curve the ledger does not use")


def read_public_key(session: Session, key_id: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public key stored beside the private key, by CKA_ID."""
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11 import exceptions as e

    try:
        obj = session.get_key(ObjectClass.PUBLIC_KEY, id=_cka_id(key_id))
    except e.NoSuchKey:
        raise CustodyError(f"HSM key {key_id!r} has no public key on the token") from None
    if obj.key_type == KeyType.RSA:
        n = int.from_bytes(obj[Attribute.MODULUS], "big")
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, n).public_key()
    if obj.key_type == KeyType.EC:
        curve = _curve_from_params(bytes(obj[Attribute.EC_PARAMS]))
        return ec_public_key(curve, bytes(obj[Attribute.EC_POINT]))
    raise CustodyError(f"HSM key {key_id!r} is neither RSA nor EC")


# -- the custody ---------------------------------------------------------------


def _key_spec(
    kty: str, key_size: int | None, crv: str | None
) -> tuple[str, int | None, str | None]:
    """(base kty, RSA size, curve) checked like the software custody's."""
    base = kty.removesuffix("-HSM")
    if base == "RSA":
        if crv is not None:
            raise CustodyError("a curve cannot be given for an RSA key")
        size = key_size or DEFAULT_RSA_KEY_SIZE
        if size not in RSA_KEY_SIZES:
            sizes = ", ".join(map(str, RSA_KEY_SIZES))
            raise CustodyError(f"unsupported RSA key size {size}; expected one of {sizes}")
        return base, size, None
    if base == "EC":
        curve = crv or DEFAULT_CURVE
        if curve not in _CURVE_OIDS:
            raise CustodyError(
                f"unsupported EC curve {curve!r}; expected one of {', '.join(_CURVE_OIDS)}"
            )
        if key_size is not None and key_size != curve_for_name(curve).key_size:
            raise CustodyError(f"key size {key_size} does not match curve {curve}")
        return base, None, curve
    raise CustodyError(f"unsupported key type {kty!r}; expected RSA-HSM or EC-HSM")


class Pkcs11Custody:
    """Key pairs on a PKCS#11 token; the ledger records their ids and owners only."""

    def __init__(self, config: Pkcs11Config, index: HsmKeyIndex) -> None:
        self.token = Pkcs11Token(config)
        self._index = index
        self._lock = threading.Lock()
        self._signers: dict[str, HsmKey] = {}

    def generate(self, owner: str, kty: str, key_size: int | None, crv: str | None) -> KeyHandle:
        base, size, curve = _key_spec(kty, key_size, crv)
        key_id = HSM_PREFIX + uuid.uuid4().hex
        self._generate_on_token(owner, key_id, base, size, curve)
        signer = self.signer(key_id)
        public = signer.public_key()
        return KeyHandle(key_id, public, f"{base}-HSM", size, curve, (HsmKeyRow(key_id, owner),))

    def _generate_on_token(
        self, owner: str, key_id: str, base: str, size: int | None, curve: str | None
    ) -> None:
        from pkcs11 import Attribute, KeyType
        from pkcs11 import exceptions as e
        from pkcs11.util.ec import encode_named_curve_parameters

        cka_id = _cka_id(key_id)
        label = LABEL_PREFIX + owner
        private = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        if base == "RSA":
            key_type = KeyType.RSA
            public[Attribute.PUBLIC_EXPONENT] = RSA_PUBLIC_EXPONENT.to_bytes(3, "big")
        else:
            assert curve is not None
            key_type = KeyType.EC
            public[Attribute.EC_PARAMS] = encode_named_curve_parameters(_CURVE_OIDS[curve])

        def act(session: Session) -> None:
            try:
                session.generate_keypair(
                    key_type,
                    size,
                    id=cka_id,
                    label=label,
                    store=True,
                    public_template=public,
                    private_template=private,
                )
            except (
                e.MechanismInvalid,
                e.DomainParamsInvalid,
                e.KeySizeRange,
                e.TemplateInconsistent,
                e.AttributeValueInvalid,
                e.FunctionFailed,
            ) as exc:
                what = f"RSA-{size}" if base == "RSA" else f"EC {curve}"
                raise CustodyError(
                    f"token {self.token.label!r} cannot generate {what} keys: {type(exc).__name__}"
                ) from exc

        self.token.run(act)

    def signer(self, key_id: str) -> HsmKey:
        with self._lock:
            cached = self._signers.get(key_id)
        if cached is not None:
            return cached

        def act(session: Session) -> HsmKey:
            self.token.private_key(session, key_id)  # it must be there, not only its public half
            public = read_public_key(session, key_id)
            if isinstance(public, rsa.RSAPublicKey):
                return HsmRsaKey(self.token, key_id, public)
            return HsmEcKey(self.token, key_id, public)

        signer = self.token.run(act)
        with self._lock:
            self._signers[key_id] = signer
        return signer

    def import_private_key(self, owner: str, key: CertificateIssuerPrivateKeyTypes) -> KeyHandle:
        raise CustodyError(
            "a private key cannot be imported into the HSM; import it under a policy whose "
            "key_props.kty is RSA or EC"
        )

    def export_private_key(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        raise _not_exportable(key_id)

    def export_owner(self, owner: str, kek: bytes) -> OwnerExport:
        """Token keys never leave the token: a backup refers to them by id only."""
        return OwnerExport(None)

    def import_owner(self, owner: str, kek: bytes, export: OwnerExport) -> tuple[CustodyRow, ...]:
        return ()

    def seal(self, owner: str, data: bytes) -> Sealed:
        raise CustodyError("the PKCS#11 custody keeps key pairs only; seal with the software one")

    def unseal(self, ref: str) -> bytes:
        raise CustodyError("the PKCS#11 custody keeps key pairs only; unseal with the software one")

    def destroy_owner(self, owner: str) -> None:
        """Destroy the owner's key pairs on the token (the index rows are the caller's)."""
        from pkcs11 import Attribute

        key_ids = self._index.hsm_key_ids(owner)
        if not key_ids:
            return

        def act(session: Session) -> None:
            for key_id in key_ids:
                for obj in list(session.get_objects({Attribute.ID: _cka_id(key_id)})):
                    obj.destroy()

        self.token.run(act)
        with self._lock:
            for key_id in key_ids:
                self._signers.pop(key_id, None)
                self.token.forget(key_id)

    def close(self) -> None:
        self.token.close()
        with self._lock:
            self._signers.clear()
