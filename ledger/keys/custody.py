"""The key custody interface: private keys are generated, used and kept here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)

from ledger.keys.store import CustodyRow, SealedBlob


class CustodyError(Exception):
    """A key or data key is missing, destroyed or unusable."""


@dataclass(frozen=True)
class KeyHandle:
    """A key in custody; `writes` must be saved with the events that reference it."""

    key_id: str
    public_key: PublicKeyTypes
    kty: str
    key_size: int | None
    crv: str | None
    writes: tuple[CustodyRow, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class OwnerExport:
    """An owner's keys for a backup: its data key wrapped under a backup key, its blobs as kept."""

    wrapped_data_key: bytes | None
    blobs: tuple[SealedBlob, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Sealed:
    ref: str
    writes: tuple[CustodyRow, ...] = field(default=(), repr=False)


class KeyCustody(Protocol):
    """Private keys never leave custody except as `signer` objects or an explicit export."""

    def generate(self, owner: str, kty: str, key_size: int | None, crv: str | None) -> KeyHandle:
        """Make a key pair inside custody, owned by `owner` (a certificate, the audit log).

        kty is RSA or EC (Key Vault names), or OKP with crv Ed25519 (RFC 8037) for the
        audit log's checkpoint signing key.
        """
        ...

    def import_private_key(
        self, owner: str, key: CertificateIssuerPrivateKeyTypes
    ) -> KeyHandle: ...

    def signer(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        """A private-key object that signs without exposing the key bytes."""
        ...

    def export_private_key(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        """The key itself, for an exportable certificate's secret value."""
        ...

    def seal(self, owner: str, data: bytes) -> Sealed:
        """Keep a small secret (e.g. an issuer's password), to be saved with its event."""
        ...

    def unseal(self, ref: str) -> bytes: ...

    def destroy_owner(self, owner: str) -> None:
        """Destroy every key and secret of `owner` (crypto-shredding)."""
        ...

    def export_owner(self, owner: str, kek: bytes) -> OwnerExport:
        """`owner`'s keys for a backup, its data key re-wrapped under `kek`."""
        ...

    def import_owner(self, owner: str, kek: bytes, export: OwnerExport) -> tuple[CustodyRow, ...]:
        """Rows that bring exported keys under `owner`, with the same key ids."""
        ...

    def close(self) -> None: ...
