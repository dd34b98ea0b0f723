"""Routes each key to its custody: -HSM key types to the PKCS#11 token, the rest to software."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from ledger.keys.custody import CustodyError, KeyCustody, KeyHandle, OwnerExport, Sealed
from ledger.keys.pkcs11 import HsmKeyIndex, is_hsm_key_id
from ledger.keys.store import CustodyRow

NO_MODULE = (
    "a PKCS#11 module: set CERTLEDGER_PKCS11_MODULE (with CERTLEDGER_PKCS11_TOKEN and "
    "CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE)"
)


def is_hsm_kty(kty: str) -> bool:
    return kty.upper().endswith("-HSM")


class RoutingCustody:
    """One `KeyCustody` over two: HSM key ids start with ``hsm:``, the rest are software's."""

    def __init__(
        self, software: KeyCustody, hardware: KeyCustody | None, index: HsmKeyIndex
    ) -> None:
        self.software = software
        self.hardware = hardware
        self._index = index

    def _hardware(self, what: str) -> KeyCustody:
        if self.hardware is None:
            raise CustodyError(f"{what} needs {NO_MODULE}; none is configured")
        return self.hardware

    def _for_key(self, key_id: str) -> KeyCustody:
        if is_hsm_key_id(key_id):
            return self._hardware(f"key {key_id} is held by a PKCS#11 token and")
        return self.software

    def generate(self, owner: str, kty: str, key_size: int | None, crv: str | None) -> KeyHandle:
        if is_hsm_kty(kty):
            return self._hardware(f"key type {kty}").generate(owner, kty, key_size, crv)
        return self.software.generate(owner, kty, key_size, crv)

    def import_private_key(self, owner: str, key: CertificateIssuerPrivateKeyTypes) -> KeyHandle:
        return self.software.import_private_key(owner, key)

    def signer(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        return self._for_key(key_id).signer(key_id)

    def export_private_key(self, key_id: str) -> CertificateIssuerPrivateKeyTypes:
        return self._for_key(key_id).export_private_key(key_id)

    def export_owner(self, owner: str, kek: bytes) -> OwnerExport:
        """Backups carry the software custody's rows; HSM keys never leave their token."""
        return self.software.export_owner(owner, kek)

    def import_owner(self, owner: str, kek: bytes, export: OwnerExport) -> tuple[CustodyRow, ...]:
        return self.software.import_owner(owner, kek, export)

    def seal(self, owner: str, data: bytes) -> Sealed:
        return self.software.seal(owner, data)

    def unseal(self, ref: str) -> bytes:
        return self.software.unseal(ref)

    def destroy_owner(self, owner: str) -> None:
        """The token's key pairs first, then the software keys and every custody row."""
        if self.hardware is not None:
            self.hardware.destroy_owner(owner)
        else:
            left = self._index.hsm_key_ids(owner)
            if left:
                raise CustodyError(
                    f"{owner}'s key pairs {', '.join(left)} are on a PKCS#11 token; destroying "
                    f"them needs {NO_MODULE}"
                )
        self.software.destroy_owner(owner)

    def close(self) -> None:
        try:
            if self.hardware is not None:
                self.hardware.close()
        finally:
            self.software.close()
