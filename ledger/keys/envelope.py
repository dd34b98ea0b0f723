"""Software key custody: envelope encryption under per-owner data keys.

Each owner (a certificate, an issuer) has a random AES-256 data key, wrapped
by the master key (RFC 3394). Private keys are stored as PKCS#8 DER encrypted
with AES-GCM under the owner's data key, bound to their reference. New rows are
returned to the caller, who saves them in the same transaction as its events.
"""

from __future__ import annotations

import os
import threading
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ledger.keys.custody import CustodyError, KeyHandle, OwnerExport, Sealed
from ledger.keys.store import CustodyRow, CustodyStore, DataKeyRow, SealedBlob
from ledger.pki.keygen import generate_private_key, key_description

PRIVATE_KEY = "private_key"
SECRET = "secret"

KeptKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class EnvelopeCustody:
    """Keys encrypted at rest; decrypted only in memory to sign or export."""

    def __init__(self, store: CustodyStore, master_key: bytes) -> None:
        self._store = store
        self._master = master_key
        self._lock = threading.Lock()
        self._keys: dict[str, CertificateIssuerPrivateKeyTypes] = {}
        self._data_keys: dict[str, bytes] = {}

    def _unwrap(self, owner: str, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._master, wrapped)
        except InvalidUnwrap as exc:
            raise CustodyError(f"the master key does not unwrap the data key of {owner!r}") from exc

    def _stored_data_key(self, owner: str) -> bytes | None:
        with self._lock:
            cached = self._data_keys.get(owner)
        if cached is not None:
            return cached
        wrapped = self._store.get_data_key(owner)
        if wrapped is None:
            return None
        key = self._unwrap(owner, wrapped)
        with self._lock:
            self._data_keys[owner] = key
        return key

    def _seal(self, owner: str, kind: str, plaintext: bytes) -> tuple[str, tuple[CustodyRow, ...]]:
        writes: list[CustodyRow] = []
        data_key = self._stored_data_key(owner)
        if data_key is None:
            # A new owner: its data key is saved with this first blob, or not at all.
            data_key = os.urandom(32)
            writes.append(DataKeyRow(owner, aes_key_wrap(self._master, data_key)))
        ref = uuid.uuid4().hex
        nonce = os.urandom(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, ref.encode())
        writes.append(SealedBlob(ref, owner, kind, nonce, ciphertext))
        return ref, tuple(writes)

    def _open(self, ref: str, kind: str) -> bytes:
        blob = self._store.get_blob(ref)
        if blob is None or blob.kind != kind:
            raise CustodyError(f"{kind.replace('_', ' ')} {ref!r} is not in custody")
        data_key = self._stored_data_key(blob.owner)
        if data_key is None:
            raise CustodyError(f"the data key of {blob.owner!r} was destroyed")
        return AESGCM(data_key).decrypt(blob.nonce, blob.ciphertext, ref.encode())

    def _keep(self, owner: str, key: CertificateIssuerPrivateKeyTypes) -> KeyHandle:
        if not isinstance(key, KeptKey):
            raise CustodyError("only RSA, EC and Ed25519 private keys can be kept")
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_id, writes = self._seal(owner, PRIVATE_KEY, der)
        with self._lock:
            self._keys[key_id] = key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return KeyHandle(key_id, key.public_key(), "OKP", None, "Ed25519", writes)
        public = key.public_key()
        kty, size, crv = key_description(public)
        if kty == "EC":
            size = None  # Key Vault names EC keys by curve only
        return KeyHandle(key_id, public, kty, size, crv, writes)

    def generate(self, owner: str, kty: str, key_size: int | None, crv: str | None) -> KeyHandle:
        if kty.endswith("-HSM"):
            raise CustodyError(f"key type {kty} needs a hardware key custody; none is configured")
        if kty == "OKP":
            # RFC 8037 names: the audit log signs its checkpoints with an Ed25519 key.
            if crv != "Ed25519" or key_size is not None:
                raise CustodyError(f"an OKP key is curve Ed25519 without a size, not {crv!r}")
            return self._keep(owner, ed25519.Ed25519PrivateKey.generate())
        return self._keep(owner, generate_private_key(kty, key_size, crv))

    def import_private_key(self, owner: str, key: CertificateIssuerPrivateKeyTypes) -> KeyHandle:
        return self._keep(owner, key)

    def signer(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        with self._lock:
            cached = self._keys.get(key_id)
        if cached is not None:
            return cached
        key = serialization.load_der_private_key(self._open(key_id, PRIVATE_KEY), password=None)
        if not isinstance(key, KeptKey):
            raise CustodyError(f"key {key_id!r} is not an RSA, EC or Ed25519 key")
        with self._lock:
            self._keys[key_id] = key
        return key

    def export_private_key(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        return self.signer(key_id)

    def seal(self, owner: str, data: bytes) -> Sealed:
        ref, writes = self._seal(owner, SECRET, data)
        return Sealed(ref, writes)

    def unseal(self, ref: str) -> bytes:
        return self._open(ref, SECRET)

    def destroy_owner(self, owner: str) -> None:
        self._store.destroy_owner(owner)
        with self._lock:
            self._keys.clear()
            self._data_keys.pop(owner, None)

    def export_owner(self, owner: str, kek: bytes) -> OwnerExport:
        data_key = self._stored_data_key(owner)
        if data_key is None:
            return OwnerExport(None)
        return OwnerExport(aes_key_wrap(kek, data_key), tuple(self._store.blobs_of(owner)))

    def import_owner(self, owner: str, kek: bytes, export: OwnerExport) -> tuple[CustodyRow, ...]:
        if export.wrapped_data_key is None:
            return ()
        try:
            source_key = aes_key_unwrap(kek, export.wrapped_data_key)
        except InvalidUnwrap as exc:
            raise CustodyError("the backup key does not unwrap the backup's data key") from exc
        target_key = self._stored_data_key(owner)
        rows: list[CustodyRow] = []
        if target_key is None:
            rows.append(DataKeyRow(owner, aes_key_wrap(self._master, source_key)))
            target_key = source_key
        for blob in export.blobs:
            if self._store.get_blob(blob.ref) is not None:
                raise CustodyError(f"key {blob.ref!r} is already in custody")
            nonce, ciphertext = blob.nonce, blob.ciphertext
            if target_key != source_key:  # the owner already has a data key: re-encrypt
                plain = AESGCM(source_key).decrypt(nonce, ciphertext, blob.ref.encode())
                nonce = os.urandom(12)
                ciphertext = AESGCM(target_key).encrypt(nonce, plain, blob.ref.encode())
            rows.append(SealedBlob(blob.ref, owner, blob.kind, nonce, ciphertext))
        return tuple(rows)

    def close(self) -> None:
        self._store.close()
        with self._lock:
            self._keys.clear()
            self._data_keys.clear()
