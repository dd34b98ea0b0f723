"""Clear errors around HSM keys: no module, wrong PIN or token, exportable policies, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, Session

from ledger.application import Ledger, parse_policy
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter
from ledger.keys import pkcs11 as hsm
from ledger.keys.custody import CustodyError
from ledger.pki import generate_private_key, self_signed
from ledger.pki.names import CertProfile
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory
from tests.integration.hsm.conftest import USER_PIN, SoftHsm, init_token, leaf_of

NO_MODULE = "needs a PKCS#11 module: set CERTLEDGER_PKCS11_MODULE"


def test_hsm_key_types_without_a_module(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    for kty in ("RSA-HSM", "EC-HSM"):
        with pytest.raises(CustodyError) as info:
            ledger.create_certificate(ctx, "premium", make_policy(kty=kty, exportable=False))
        assert str(info.value).startswith(f"key type {kty} {NO_MODULE}")
        assert "CERTLEDGER_PKCS11_TOKEN" in str(info.value)
        assert ledger.find_certificate("premium") is None  # nothing was saved
    ledger.create_certificate(ctx, "standard", make_policy(kty="EC"))  # software keys still work


def test_wrong_pin_is_named_and_software_keys_still_work(
    tmp_path: Path, softhsm: SoftHsm, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ=softhsm.environ(pin="0000-bad"))
    ledger = open_ledger(settings, clock=clock)  # the token is opened on first use
    try:
        with pytest.raises(CustodyError) as info:
            ledger.create_certificate(ctx, "hsm", make_policy(kty="EC-HSM", exportable=False))
        message = str(info.value)
        assert message == (
            "token 'certledger-test' refused the user PIN "
            "(CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE)"
        )
        assert "0000-bad" not in message and USER_PIN not in message
        assert info.value.__cause__ is None and info.value.__context__ is not None
        ledger.create_certificate(ctx, "soft", make_policy(kty="EC", issuer="Self"))
        assert Worker(ledger).drive("soft").version_of(None).key_id is not None
    finally:
        ledger.close()


def test_unknown_token_lists_the_tokens(
    tmp_path: Path,
    softhsm: SoftHsm,
    softhsm_util: str,
    clock: Clock,
    ctx: Ctx,
    make_policy: PolicyFactory,
) -> None:
    init_token(softhsm_util, softhsm.conf, "second-token")
    env = {**softhsm.environ(), "CERTLEDGER_PKCS11_TOKEN": "missing"}
    ledger = open_ledger(Settings.resolve(home=tmp_path / "home", environ=env), clock=clock)
    try:
        with pytest.raises(CustodyError) as info:
            ledger.create_certificate(ctx, "x", make_policy(kty="RSA-HSM", exportable=False))
        assert str(info.value) == (
            f"no token labelled 'missing' in PKCS#11 module {softhsm.module} "
            "(CERTLEDGER_PKCS11_TOKEN); tokens present: 'certledger-test', 'second-token'"
        )
    finally:
        ledger.close()


def test_a_bad_module_is_named(tmp_path: Path, clock: Clock) -> None:
    not_a_module = tmp_path / "libnothing.so"
    not_a_module.write_bytes(b"not an ELF file")
    custody = hsm.Pkcs11Custody(hsm.Pkcs11Config(not_a_module, "t", "1234"), _NoIndex())
    try:
        with pytest.raises(CustodyError) as info:
            custody.generate("o", "EC-HSM", None, "P-256")
        assert str(info.value).startswith(
            f"cannot load the PKCS#11 module {not_a_module} (CERTLEDGER_PKCS11_MODULE): "
        )
    finally:
        custody.close()


class _NoIndex:
    def hsm_key_ids(self, owner: str) -> list[str]:
        return []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CERTLEDGER_PKCS11_MODULE": "/no/such/module.so"}, "no such file /no/such/module.so"),
        ({"CERTLEDGER_PKCS11_MODULE": "{module}"}, "CERTLEDGER_PKCS11_TOKEN: the label"),
        (
            {"CERTLEDGER_PKCS11_MODULE": "{module}", "CERTLEDGER_PKCS11_TOKEN": "t"},
            "the token's user PIN is required: set CERTLEDGER_PKCS11_PIN or",
        ),
        (
            {
                "CERTLEDGER_PKCS11_MODULE": "{module}",
                "CERTLEDGER_PKCS11_TOKEN": "t",
                "CERTLEDGER_PKCS11_PIN": "1",
                "CERTLEDGER_PKCS11_PIN_FILE": "/x",
            },
            "set CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE, not both",
        ),
        (
            {
                "CERTLEDGER_PKCS11_MODULE": "{module}",
                "CERTLEDGER_PKCS11_TOKEN": "t",
                "CERTLEDGER_PKCS11_PIN_FILE": "/no/such/pin",
            },
            "CERTLEDGER_PKCS11_PIN_FILE: cannot read /no/such/pin",
        ),
        ({"CERTLEDGER_PKCS11_PIN": "1"}, "but CERTLEDGER_PKCS11_MODULE is not"),
    ],
)
def test_settings_name_what_is_missing(
    softhsm_module: Path, env: dict[str, str], message: str
) -> None:
    environ = {k: v.format(module=softhsm_module) for k, v in env.items()}
    with pytest.raises(ValueError) as info:
        Settings.resolve(home="/tmp/x", environ=environ)
    assert message in str(info.value)


def test_pin_file_and_repr(tmp_path: Path, softhsm: SoftHsm) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    env = {**softhsm.environ(), "CERTLEDGER_PKCS11_PIN_FILE": str(pin_file)}
    del env["CERTLEDGER_PKCS11_PIN"]
    settings = Settings.resolve(home=tmp_path / "home", environ=env)
    assert settings.pkcs11_pin == softhsm.pin
    assert settings.pkcs11_module == softhsm.module
    assert settings.pkcs11_token == softhsm.label
    assert softhsm.pin not in repr(settings)
    assert softhsm.pin not in repr(softhsm.config())
    ledger = open_ledger(settings)
    try:
        handle = ledger.custody.generate("o", "EC-HSM", None, "P-256")
        assert handle.key_id.startswith("hsm:")
    finally:
        ledger.close()


def test_exportable_hsm_policies_are_refused(
    hsm_ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    document: dict[str, Any] = {
        "key_props": {"kty": "RSA-HSM", "key_size": 2048, "exportable": True},
        "x509_props": {"subject": "CN=x.example"},
        "issuer": {"name": "Self"},
    }
    with pytest.raises(BadParameter) as info:
        parse_policy(document)
    assert str(info.value) == (
        "invalid policy: key_props.exportable: cannot be true for an RSA-HSM key: its private "
        "key never leaves the HSM, so the secret holds the certificate chain only"
    )
    del document["key_props"]["exportable"]
    policy = parse_policy(document)
    assert policy.key_props.exportable is False
    hsm_ledger.create_certificate(ctx, "x", policy)
    v = Worker(hsm_ledger).drive("x").version_of(None)
    assert v.exportable is False
    # Switching a stored software policy to an HSM key type needs exportable false too.
    hsm_ledger.create_certificate(ctx, "soft", make_policy(kty="EC", issuer="Self"))
    assert Worker(hsm_ledger).drive("soft").version_of(None).kty == "EC"
    with pytest.raises(ValueError, match=r"key_props\.exportable: cannot be true for an EC-HSM"):
        hsm_ledger.update_policy(ctx, "soft", {"key_props": {"kty": "EC-HSM"}})
    hsm_ledger.update_policy(ctx, "soft", {"key_props": {"kty": "EC-HSM", "exportable": False}})
    hsm_ledger.create_certificate(ctx, "soft")
    renewed = Worker(hsm_ledger).drive("soft").version_of(None)
    assert renewed.kty == "EC-HSM" and renewed.key_id is not None
    assert renewed.key_id.startswith("hsm:")


def test_import_into_an_hsm_policy_is_refused(
    hsm_ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    hsm_ledger.create_certificate(ctx, "byok", make_policy(kty="EC-HSM", exportable=False))
    key = generate_private_key("EC", curve="P-256")
    cert = self_signed(
        key, CertProfile(subject=[("CN", "byok")]), now=Worker(hsm_ledger).ledger.now()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(BadParameter) as info:
        hsm_ledger.import_certificate(ctx, "byok", pem)
    assert str(info.value) == (
        "cannot import into 'byok': its policy asks for an EC-HSM key, and a private key "
        "cannot be imported into the HSM; import with a policy whose key_props.kty is RSA or EC"
    )
    with pytest.raises(CustodyError, match="cannot be imported into the HSM"):
        hsm_ledger.custody.hardware.import_private_key("o", key)  # type: ignore[attr-defined]
    # The custody's own import still goes to software.
    handle = hsm_ledger.custody.import_private_key("o", ec.generate_private_key(ec.SECP256R1()))
    assert not handle.key_id.startswith("hsm:")


def token_ids(softhsm: SoftHsm) -> set[bytes]:
    token = hsm.Pkcs11Token(softhsm.config())
    try:
        return token.run(lambda s: {bytes(o[Attribute.ID]) for o in _objects(s)})
    finally:
        token.close()


def _objects(session: Session) -> list[Any]:
    return list(session.get_objects({}))


def test_purge_destroys_the_token_keys(
    softhsm: SoftHsm, hsm_settings: Settings, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        ledger.create_certificate(ctx, "gone", make_policy(kty="RSA-HSM", exportable=False))
        Worker(ledger).drive("gone")
        ledger.create_certificate(ctx, "gone")  # a second key pair, still pending
        ledger.create_certificate(ctx, "kept", make_policy(kty="EC-HSM", exportable=False))
        gone = [v.key_id for v in ledger.certificate("gone").versions.values()]
        kept = ledger.certificate("kept").pending_version().key_id
        assert len(gone) == 2 and all(k and k.startswith("hsm:") for k in gone) and kept
        ledger.delete_certificate(ctx, "gone")
        ledger.purge_certificate(ctx, "gone")
        left = token_ids_open(ledger)
        assert {hsm._cka_id(k) for k in gone if k} & left == set()
        assert hsm._cka_id(kept) in left
        store_rows = ledger.custody.software._store  # type: ignore[attr-defined]
        assert store_rows.hsm_key_ids("cert:gone:1") == []
        assert store_rows.hsm_key_ids("cert:kept:1") == [kept]
    finally:
        ledger.close()


def token_ids_open(ledger: Ledger) -> set[bytes]:
    hardware = ledger.custody.hardware  # type: ignore[attr-defined]
    ids: set[bytes] = hardware.token.run(lambda s: {bytes(o[Attribute.ID]) for o in _objects(s)})
    return ids


def test_hsm_keys_without_the_module_are_named(
    softhsm: SoftHsm, hsm_settings: Settings, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        ledger.create_certificate(ctx, "hw", make_policy(kty="EC-HSM", exportable=False))
        key_id = Worker(ledger).drive("hw").version_of(None).key_id
        assert key_id is not None
    finally:
        ledger.close()
    plain = Settings.resolve(home=hsm_settings.home, environ={})
    ledger = open_ledger(plain, clock=clock)
    try:
        with pytest.raises(CustodyError) as info:
            ledger.sign(ctx, "hw", None, "ES256", b"\0" * 32)
        assert str(info.value).startswith(
            f"key {key_id} is held by a PKCS#11 token and {NO_MODULE}"
        )
        # The secret needs no key (not exportable), so it is still served.
        value, v = ledger.secret_value(ctx, "hw")
        assert v.key_id == key_id and value
        ledger.delete_certificate(ctx, "hw")
        with pytest.raises(CustodyError, match=f"cert:hw:1's key pairs {key_id} are on a PKCS#11"):
            ledger.purge_certificate(ctx, "hw")
    finally:
        ledger.close()
    assert hsm._cka_id(key_id) in token_ids(softhsm)  # left for an operator to remove


def cli(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-c", "from ledger.cli import main; main()",
            "--home", str(home), "-o", "json", *args,
        ],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_creates_hsm_certificates(tmp_path: Path, softhsm: SoftHsm) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    create = ("cert", "create", "edge", "--issuer", "Self", "--subject", "CN=edge.example")
    home = tmp_path / "cli-home"

    refused = cli(home, base, *create, "--kty", "EC-HSM", "--wait")
    assert refused.returncode == 1
    assert f"error: key type EC-HSM {NO_MODULE}" in refused.stderr

    env = {**base, **softhsm.environ(), "SOFTHSM2_CONF": str(softhsm.conf)}
    made = cli(home, env, *create, "--kty", "EC-HSM", "--curve", "P-384", "--wait")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["status"] == "completed"
    key = json.loads(cli(home, env, "key", "show", "edge").stdout)["key"]
    assert key["kty"] == "EC-HSM" and key["crv"] == "P-384"
    secret = json.loads(cli(home, env, "secret", "show", "edge").stdout)
    assert secret["contentType"] == "application/x-pkcs12"
    # Switching the stored policy to RSA-HSM by flag sets exportable false by itself.
    switched = cli(home, env, *create, "--kty", "RSA-HSM", "--size", "2048", "--wait")
    assert switched.returncode == 0, switched.stderr
    policy = json.loads(cli(home, env, "cert", "show", "edge").stdout)["policy"]
    assert policy["key_props"]["kty"] == "RSA-HSM"
    assert policy["key_props"]["exportable"] is False

    wrong = {**env, "CERTLEDGER_PKCS11_PIN": "bad-pin"}
    denied = cli(home, wrong, "key", "sign", "edge", "--alg", "RS256", "--digest", "00" * 32)
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        "error: token 'certledger-test' refused the user PIN "
        "(CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE)"
    )
    assert "bad-pin" not in denied.stderr


def test_secret_of_an_hsm_certificate_has_the_chain_only(
    hsm_ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    hsm_ledger.set_issuer(ctx, "corp", provider="LocalCA")
    policy = make_policy(
        kty="RSA-HSM", exportable=False, issuer="corp", content_type="application/x-pem-file"
    )
    hsm_ledger.create_certificate(ctx, "chain", policy)
    v = Worker(hsm_ledger).drive("chain").version_of(None)
    value, _ = hsm_ledger.secret_value(ctx, "chain")
    assert "PRIVATE KEY" not in value
    certs = x509.load_pem_x509_certificates(value.encode())
    assert certs[0] == leaf_of(v) and len(certs) == 2
