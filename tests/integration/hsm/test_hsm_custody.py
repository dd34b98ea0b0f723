"""The PKCS#11 custody on its own: every key type, attributes, lookup after reopening, destroy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, ObjectClass, Session

from ledger.keys import pkcs11 as hsm
from ledger.keys.custody import CustodyError
from ledger.keys.store import HsmKeyRow
from ledger.pki import CertProfile, build_csr, self_signed
from tests.integration.hsm.conftest import SoftHsm, spki

PROFILE = CertProfile(subject=[("CN", "token.example")], dns_names=("token.example",))


class MemoryIndex:
    """The owner index the ledger's database keeps, in memory."""

    def __init__(self) -> None:
        self.rows: list[HsmKeyRow] = []

    def hsm_key_ids(self, owner: str) -> list[str]:
        return [row.key_id for row in self.rows if row.owner == owner]


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


@pytest.fixture
def custody(softhsm: SoftHsm, index: MemoryIndex) -> Iterator[hsm.Pkcs11Custody]:
    opened = hsm.Pkcs11Custody(softhsm.config(), index)
    try:
        yield opened
    finally:
        opened.close()


def objects_with_id(token: hsm.Pkcs11Token, key_id: str) -> list[str]:
    def read(session: Session) -> list[str]:
        found = session.get_objects({Attribute.ID: hsm._cka_id(key_id)})
        return sorted(obj[Attribute.CLASS].name for obj in found)

    return token.run(read)


@pytest.mark.parametrize(
    ("kty", "size", "crv"),
    [
        ("RSA-HSM", 2048, None),
        ("RSA-HSM", 3072, None),
        ("RSA-HSM", 4096, None),
        ("EC-HSM", None, "P-256"),
        ("EC-HSM", None, "P-384"),
        ("EC-HSM", None, "P-521"),
        ("EC-HSM", None, "P-256K"),
    ],
)
def test_every_key_type_is_made_and_signs_on_the_token(
    custody: hsm.Pkcs11Custody,
    index: MemoryIndex,
    token: hsm.Pkcs11Token,
    kty: str,
    size: int | None,
    crv: str | None,
) -> None:
    handle = custody.generate("cert:t:1", kty, size, crv)
    index.rows.extend(row for row in handle.writes if isinstance(row, HsmKeyRow))
    assert handle.key_id.startswith("hsm:") and len(handle.key_id) == 36
    assert (handle.kty, handle.key_size, handle.crv) == (kty, size, crv)
    assert handle.writes == (HsmKeyRow(handle.key_id, "cert:t:1"),)
    assert objects_with_id(token, handle.key_id) == ["PRIVATE_KEY", "PUBLIC_KEY"]

    signer = custody.signer(handle.key_id)
    assert spki(signer.public_key()) == spki(handle.public_key)
    if kty == "RSA-HSM":
        assert isinstance(signer, rsa.RSAPrivateKey) and signer.key_size == size
    else:
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
    # cryptography's builders sign through the ABC.
    csr = build_csr(signer, PROFILE)
    assert csr.is_signature_valid
    cert = self_signed(signer, PROFILE, now=datetime.now(UTC))
    cert.verify_directly_issued_by(cert)


def test_rsa_paddings_and_hashes(custody: hsm.Pkcs11Custody) -> None:
    signer = custody.signer(custody.generate("o", "RSA-HSM", 2048, None).key_id)
    assert isinstance(signer, rsa.RSAPrivateKey)
    public = signer.public_key()
    data = b"payload"
    for h in (hashes.SHA224(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        pads: list[Any] = [
            padding.PKCS1v15(),
            padding.PSS(padding.MGF1(h), padding.PSS.MAX_LENGTH),
            padding.PSS(padding.MGF1(h), padding.PSS.DIGEST_LENGTH),
            padding.PSS(padding.MGF1(h), 0),
        ]
        for pad in pads:
            public.verify(signer.sign(data, pad, h), data, pad, h)
            digest = hashes.Hash(h)
            digest.update(data)
            prehashed = signer.sign(digest.finalize(), pad, utils.Prehashed(h))
            public.verify(prehashed, data, pad, h)
    with pytest.raises(ValueError, match="sha256 digest is 32 bytes, not 3"):
        signer.sign(b"abc", padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    with pytest.raises(UnsupportedAlgorithm):
        signer.sign(data, padding.PKCS1v15(), hashes.SHA3_256())
    with pytest.raises(UnsupportedAlgorithm):
        signer.decrypt(b"x" * 256, padding.PKCS1v15())


def test_ec_refuses_what_the_token_does_not_do(custody: hsm.Pkcs11Custody) -> None:
    signer = custody.signer(custody.generate("o", "EC-HSM", None, "P-256").key_id)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    with pytest.raises(UnsupportedAlgorithm):
        signer.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key())
    # A longer hash is truncated to the curve's order by ECDSA, as in software.
    sig = signer.sign(b"data", ec.ECDSA(hashes.SHA512()))
    signer.public_key().verify(sig, b"data", ec.ECDSA(hashes.SHA512()))


def test_keys_are_found_again_by_a_new_custody(
    softhsm: SoftHsm, index: MemoryIndex, custody: hsm.Pkcs11Custody
) -> None:
    handle = custody.generate("cert:k:1", "EC-HSM", None, "P-384")
    custody.close()
    assert hsm._module_users == {}
    again = hsm.Pkcs11Custody(softhsm.config(), index)
    try:
        signer = again.signer(handle.key_id)
        assert spki(signer.public_key()) == spki(handle.public_key)
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        sig = signer.sign(b"after", ec.ECDSA(hashes.SHA384()))
        handle_public = handle.public_key
        assert isinstance(handle_public, ec.EllipticCurvePublicKey)
        handle_public.verify(sig, b"after", ec.ECDSA(hashes.SHA384()))
    finally:
        again.close()
    with pytest.raises(CustodyError, match="custody is closed"):
        custody.signer("hsm:" + "0" * 32)


def test_destroy_owner_removes_only_that_owners_objects(
    custody: hsm.Pkcs11Custody, index: MemoryIndex, token: hsm.Pkcs11Token
) -> None:
    handles: dict[str, list[str]] = {}
    for owner in ("cert:a:1", "cert:a:1", "cert:b:1"):
        handle = custody.generate(owner, "EC-HSM", None, "P-256")
        index.rows.extend(row for row in handle.writes if isinstance(row, HsmKeyRow))
        handles.setdefault(owner, []).append(handle.key_id)
    custody.signer(handles["cert:a:1"][0])  # cached signer and key handle

    custody.destroy_owner("cert:a:1")

    for key_id in handles["cert:a:1"]:
        assert objects_with_id(token, key_id) == []
        with pytest.raises(CustodyError, match="is not on token"):
            custody.signer(key_id)
    assert objects_with_id(token, handles["cert:b:1"][0]) == ["PRIVATE_KEY", "PUBLIC_KEY"]
    custody.signer(handles["cert:b:1"][0])
    custody.destroy_owner("cert:nobody:1")  # nothing to do


def test_labels_name_the_owner(custody: hsm.Pkcs11Custody, token: hsm.Pkcs11Token) -> None:
    custody.generate("cert:labelled:3", "RSA-HSM", 2048, None)

    def labels(session: Session) -> list[str]:
        keys = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return [key[Attribute.LABEL] for key in keys]

    assert token.run(labels) == ["certledger:cert:labelled:3"]


@pytest.mark.parametrize(
    ("kty", "size", "crv", "message"),
    [
        ("RSA-HSM", 1024, None, "unsupported RSA key size 1024; expected one of 2048, 3072, 4096"),
        ("RSA-HSM", 2048, "P-256", "a curve cannot be given for an RSA key"),
        ("EC-HSM", None, "P-192", "unsupported EC curve 'P-192'"),
        ("EC-HSM", 384, "P-256", "key size 384 does not match curve P-256"),
        ("OKP-HSM", None, None, "unsupported key type 'OKP-HSM'; expected RSA-HSM or EC-HSM"),
    ],
)
def test_bad_key_specs(
    custody: hsm.Pkcs11Custody, kty: str, size: int | None, crv: str | None, message: str
) -> None:
    with pytest.raises(CustodyError) as info:
        custody.generate("o", kty, size, crv)
    assert str(info.value).startswith(message)


def test_bad_key_ids(custody: hsm.Pkcs11Custody) -> None:
    with pytest.raises(CustodyError, match="'hsm:nothex' is not a valid HSM key id"):
        custody.signer("hsm:nothex")
    with pytest.raises(CustodyError, match="'abc' is not an HSM key"):
        custody.signer("abc")
    with pytest.raises(CustodyError, match="is not on token 'certledger-test'"):
        custody.signer("hsm:" + "ab" * 16)
