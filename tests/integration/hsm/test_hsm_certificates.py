"""RSA-HSM and EC-HSM certificates on a SoftHSM2 token, through the three creation paths."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from pkcs11 import Attribute, ObjectClass, Session
from pkcs11 import exceptions as pkcs11_errors

from ledger.application import Ledger
from ledger.bootstrap import open_views
from ledger.domain.certificate import Version
from ledger.domain.context import Ctx
from ledger.keys import pkcs11 as hsm
from ledger.keys.custody import CustodyError
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import PEM as PEM_CONTENT
from tests.integration.conftest import Openssl, PolicyFactory
from tests.integration.hsm.conftest import PEM, leaf_of, spki

# (kty, RSA size, curve): the key types every path is run with.
HSM_KEYS = [("RSA-HSM", 2048, None), ("EC-HSM", None, "P-256"), ("EC-HSM", None, "P-384")]
KEY_IDS = [f"{kty}-{size or crv}" for kty, size, crv in HSM_KEYS]

PEM_PRIVATE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Plaintext PKCS#8 PrivateKeyInfo: version 0 followed by the rsaEncryption or
# id-ecPublicKey algorithm (certificates and public keys never have that pairing).
PKCS8_DER = re.compile(
    rb"\x02\x01\x00\x30[\x0d\x0b]\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
    rb"|\x02\x01\x00\x30[\x10-\x13]\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"
)


def hsm_policy(
    make_policy: PolicyFactory, kty: str, size: int | None, crv: str | None, **kw: Any
) -> Any:
    return make_policy(kty=kty, key_size=size, curve=crv, exportable=False, **kw)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def private_key_attributes(token: hsm.Pkcs11Token, key_id: str) -> dict[str, Any]:
    """What the token says of the private key, and whether its secret parts can be read."""

    def read(session: Session) -> dict[str, Any]:
        cka_id = hsm._cka_id(key_id)
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
        mine = [k for k in keys if k[Attribute.ID] == cka_id]
        assert len(mine) == 1
        key = mine[0]
        names = ("TOKEN", "PRIVATE", "SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE")
        found: dict[str, Any] = {name: key[Attribute[name]] for name in names}
        found["NEVER_EXTRACTABLE"] = key[Attribute.NEVER_EXTRACTABLE]
        found["LABEL"] = key[Attribute.LABEL]
        is_rsa = key[Attribute.KEY_TYPE].name == "RSA"
        secret = Attribute.PRIVATE_EXPONENT if is_rsa else Attribute.VALUE
        try:
            key[secret]
            found["secret_readable"] = True
        except pkcs11_errors.AttributeSensitive:
            found["secret_readable"] = False
        return found

    return token.run(read)


def token_public_key(token: hsm.Pkcs11Token, key_id: str) -> Any:
    return token.run(lambda session: hsm.read_public_key(session, key_id))


def check_on_token(token: hsm.Pkcs11Token, v: Version, owner: str) -> None:
    """The version's key is a non-extractable token key whose public half is the certificate's."""
    assert v.key_id is not None and v.key_id.startswith("hsm:")
    attrs = private_key_attributes(token, v.key_id)
    assert attrs["TOKEN"] is True and attrs["PRIVATE"] is True
    assert attrs["SENSITIVE"] is True and attrs["ALWAYS_SENSITIVE"] is True
    assert attrs["EXTRACTABLE"] is False and attrs["NEVER_EXTRACTABLE"] is True
    assert attrs["secret_readable"] is False
    assert attrs["LABEL"] == f"certledger:{owner}"
    assert spki(token_public_key(token, v.key_id)) == spki(leaf_of(v).public_key())
    assert v.public_key_pem is not None
    assert serialization.load_pem_public_key(v.public_key_pem.encode()) == leaf_of(v).public_key()


def scan_home(home: Path) -> list[str]:
    """Private keys in the clear (PEM blocks or PKCS#8 DER) in any file of the ledger."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if PEM_PRIVATE.search(data):
            found.append(f"PEM private key in {path.name}")
        if PKCS8_DER.search(data):
            found.append(f"PKCS#8 DER in {path.name}")
    return found


def check_secret_has_no_key(ledger: Ledger, ctx: Ctx, name: str, v: Version) -> None:
    value, used = ledger.secret_value(ctx, name)
    assert used.version == v.version and not used.exportable
    if v.content_type == PEM_CONTENT:
        assert "PRIVATE KEY" not in value
        assert x509.load_pem_x509_certificates(value.encode())[0] == leaf_of(v)
    else:
        bundle = pkcs12.load_pkcs12(base64.b64decode(value), None)
        assert bundle.key is None
        certs = [c.certificate for c in bundle.additional_certs]
        assert bundle.cert is None and leaf_of(v) in certs


def check_key_bundle(ledger: Ledger, name: str, kty: str) -> None:
    projector, queries = open_views(ledger)
    projector.catch_up()
    jwk = queries.key(name)["key"]
    projector.db.close()
    assert jwk["kty"] == kty
    assert set(jwk) >= ({"n", "e"} if kty == "RSA-HSM" else {"crv", "x", "y"})


@pytest.mark.parametrize(("kty", "size", "crv"), HSM_KEYS, ids=KEY_IDS)
def test_self_signed_with_an_hsm_key(
    hsm_ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    token: hsm.Pkcs11Token,
    openssl: Openssl,
    tmp_path: Path,
    hsm_settings: Settings,
    kty: str,
    size: int | None,
    crv: str | None,
) -> None:
    policy = hsm_policy(make_policy, kty, size, crv, issuer="Self", content_type=PEM_CONTENT)
    created = hsm_ledger.create_certificate(ctx, "web", policy)
    pending = created.pending_version()
    assert pending.kty == kty and pending.key_size == size and pending.crv == crv
    csr_pem = write(
        tmp_path / "req.pem",
        x509.load_der_x509_csr(base64.b64decode(pending.csr_der or "")).public_bytes(PEM),
    )
    assert "verify OK" in openssl("req", "-in", csr_pem, "-verify", "-noout")

    done = Worker(hsm_ledger).drive("web")
    assert done.operation is not None and done.operation.status == "completed"
    v = done.version_of(None)
    assert v.origin == "self"
    cert_pem = write(tmp_path / "self.pem", leaf_of(v).public_bytes(PEM))
    assert ": OK" in openssl("verify", "-CAfile", cert_pem, "-check_ss_sig", cert_pem)
    text = openssl("x509", "-in", cert_pem, "-noout", "-text")
    assert ("rsaEncryption" if kty == "RSA-HSM" else "id-ecPublicKey") in text

    check_on_token(token, v, "cert:web:1")
    check_secret_has_no_key(hsm_ledger, ctx, "web", v)
    check_key_bundle(hsm_ledger, "web", kty)
    assert scan_home(hsm_settings.home) == []


@pytest.fixture(scope="module")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory, openssl_bin: str) -> Path:
    """A CA made with the openssl command line tool; returns its folder."""
    folder = tmp_path_factory.mktemp("openssl-ca")
    proc = subprocess.run(
        [
            openssl_bin, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=HSM Test CA/O=Fabrikam",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        cwd=folder, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.mark.parametrize(("kty", "size", "crv"), HSM_KEYS, ids=KEY_IDS)
def test_manual_merge_with_an_hsm_key(
    hsm_ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    token: hsm.Pkcs11Token,
    openssl: Openssl,
    openssl_ca: Path,
    tmp_path: Path,
    hsm_settings: Settings,
    kty: str,
    size: int | None,
    crv: str | None,
) -> None:
    policy = hsm_policy(make_policy, kty, size, crv, issuer="Unknown")
    created = hsm_ledger.create_certificate(ctx, "api", policy)
    csr = x509.load_der_x509_csr(base64.b64decode(created.pending_version().csr_der or ""))
    csr_pem = write(tmp_path / "api.csr", csr.public_bytes(PEM))
    assert "verify OK" in openssl("req", "-in", csr_pem, "-verify", "-noout")

    ca, ca_key = openssl_ca / "ca.pem", openssl_ca / "ca.key"
    leaf_pem = tmp_path / "api.pem"
    openssl(
        "x509", "-req", "-in", csr_pem, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-CAserial", tmp_path / "ca.srl", "-days", "30", "-sha256", "-copy_extensions", "copy",
        "-out", leaf_pem,
    )  # fmt: skip
    merged = hsm_ledger.merge_certificate(ctx, "api", leaf_pem.read_bytes() + ca.read_bytes())
    assert merged.operation is not None and merged.operation.status == "completed"
    v = merged.version_of(None)
    assert v.origin == "merge"
    stored_leaf = write(tmp_path / "stored.pem", leaf_of(v).public_bytes(PEM))
    assert ": OK" in openssl("verify", "-CAfile", ca, stored_leaf)

    check_on_token(token, v, "cert:api:1")
    check_secret_has_no_key(hsm_ledger, ctx, "api", v)
    check_key_bundle(hsm_ledger, "api", kty)
    assert scan_home(hsm_settings.home) == []


@pytest.mark.parametrize(("kty", "size", "crv"), HSM_KEYS, ids=KEY_IDS)
def test_local_ca_issues_for_an_hsm_key(
    hsm_ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    token: hsm.Pkcs11Token,
    openssl: Openssl,
    tmp_path: Path,
    hsm_settings: Settings,
    kty: str,
    size: int | None,
    crv: str | None,
) -> None:
    hsm_ledger.set_issuer(ctx, "corp", provider="LocalCA")
    policy = hsm_policy(make_policy, kty, size, crv, issuer="corp")
    hsm_ledger.create_certificate(ctx, "site", policy)
    done = Worker(hsm_ledger).drive("site")
    assert done.operation is not None and done.operation.status == "completed"
    v = done.version_of(None)
    assert v.origin == "provider"

    ca_pem = hsm_ledger.issuer(ctx, "corp").provider_state["ca_cert_pem"]
    ca = write(tmp_path / "corp-ca.pem", ca_pem.encode())
    leaf = write(tmp_path / "site.pem", leaf_of(v).public_bytes(PEM))
    assert ": OK" in openssl("verify", "-CAfile", ca, "-purpose", "sslserver", leaf)

    check_on_token(token, v, "cert:site:1")
    check_secret_has_no_key(hsm_ledger, ctx, "site", v)
    check_key_bundle(hsm_ledger, "site", kty)
    assert scan_home(hsm_settings.home) == []
    # The ledger's database holds the HSM key's id and owner, and no private key blob for it.
    with sqlite3.connect(hsm_settings.database.path) as db:
        rows = db.execute("SELECT key_id, owner FROM custody_hsm_keys").fetchall()
        blobs = db.execute(
            "SELECT count(*) FROM custody_blobs WHERE owner LIKE 'cert:%'"
        ).fetchone()
    assert rows == [(v.key_id, "cert:site:1")]
    assert blobs == (0,)


def test_the_scan_finds_planted_keys(tmp_path: Path) -> None:
    home = tmp_path / "planted"
    home.mkdir()
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    write(home / "clean", spki(rsa_key.public_key()) + spki(ec_key.public_key()))
    assert scan_home(home) == []
    write(home / "pem", ec_key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, none))
    write(home / "rsa.der", b"xx" + rsa_key.private_bytes(serialization.Encoding.DER, pkcs8, none))
    write(home / "ec.der", ec_key.private_bytes(serialization.Encoding.DER, pkcs8, none) + b"x")
    assert scan_home(home) == [
        "PKCS#8 DER in ec.der",
        "PEM private key in pem",
        "PKCS#8 DER in rsa.der",
    ]


# -- signing with the managed key ----------------------------------------------------


def verify_jws(public: Any, algorithm: str, signature: bytes, digest: bytes) -> None:
    """Check a Key Vault style signature (raw r||s for ECDSA) over a digest."""
    hash_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
    bits = algorithm[2:5]
    prehashed = utils.Prehashed(hash_alg[bits])
    if algorithm.startswith("ES"):
        half = len(signature) // 2
        der = utils.encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        public.verify(der, digest, ec.ECDSA(prehashed))
    elif algorithm.startswith("RS"):
        public.verify(signature, digest, padding.PKCS1v15(), prehashed)
    else:
        pss = padding.PSS(mgf=padding.MGF1(hash_alg[bits]), salt_length=len(digest))
        public.verify(signature, digest, pss, prehashed)


@pytest.mark.parametrize(
    ("kty", "size", "crv", "algorithm"),
    [
        ("EC-HSM", None, "P-256", "ES256"),
        ("EC-HSM", None, "P-384", "ES384"),
        ("EC-HSM", None, "P-521", "ES512"),
        ("EC-HSM", None, "P-256K", "ES256K"),
        ("RSA-HSM", 2048, None, "RS256"),
        ("RSA-HSM", 2048, None, "PS256"),
        ("RSA-HSM", 3072, None, "PS384"),
        ("RSA-HSM", 3072, None, "RS512"),
    ],
)
def test_ledger_sign_with_an_hsm_key(
    hsm_ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    kty: str,
    size: int | None,
    crv: str | None,
    algorithm: str,
) -> None:
    hsm_ledger.create_certificate(ctx, "signer", hsm_policy(make_policy, kty, size, crv))
    v = Worker(hsm_ledger).drive("signer").version_of(None)
    public = leaf_of(v).public_key()
    hash_name = {"256": "sha256", "384": "sha384", "512": "sha512"}[algorithm[2:5]]
    digest = hashlib.new(hash_name, b"the message to sign").digest()

    signature, used = hsm_ledger.sign(ctx, "signer", None, algorithm, digest)

    assert used.version == v.version
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert len(signature) == 2 * ((public.curve.key_size + 7) // 8)
    verify_jws(public, algorithm, signature, digest)
    other = hashlib.new(hash_name, b"another message").digest()
    with pytest.raises(InvalidSignature):
        verify_jws(public, algorithm, signature, other)
    if algorithm.startswith(("ES", "PS")):  # randomised: two signatures differ
        assert hsm_ledger.sign(ctx, "signer", None, algorithm, digest)[0] != signature


def test_the_signer_never_yields_private_bytes(
    hsm_ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    hsm_ledger.create_certificate(ctx, "c", hsm_policy(make_policy, "EC-HSM", None, "P-256"))
    v = Worker(hsm_ledger).drive("c").version_of(None)
    assert v.key_id is not None
    signer = hsm_ledger.custody.signer(v.key_id)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    none = serialization.NoEncryption()
    with pytest.raises(hsm.KeyNotExportable, match="held by a PKCS#11 token"):
        signer.private_bytes(PEM, serialization.PrivateFormat.PKCS8, none)
    with pytest.raises(hsm.KeyNotExportable):
        signer.private_numbers()
    with pytest.raises(CustodyError, match="cannot be exported"):
        hsm_ledger.custody.export_private_key(v.key_id)
    # cryptography's own serialisers refuse it as well.
    with pytest.raises((TypeError, CustodyError)):
        pkcs12.serialize_key_and_certificates(b"x", signer, leaf_of(v), None, none)
