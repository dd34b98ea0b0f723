"""HSM-backed certificates survive closing the ledger: the keys are found again on the token."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.keys import pkcs11 as hsm
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory
from tests.integration.hsm.conftest import SoftHsm, leaf_of
from tests.integration.hsm.test_hsm_certificates import verify_jws


def test_restart_signs_with_the_same_token_keys(
    softhsm: SoftHsm, hsm_settings: Settings, clock: Clock, make_policy: PolicyFactory
) -> None:
    ctx = Ctx("admin")
    digest = hashlib.sha256(b"before and after").digest()
    first = open_ledger(hsm_settings, clock=clock)
    try:
        first.set_issuer(ctx, "corp", provider="LocalCA")
        for name, kty, issuer in [("ec", "EC-HSM", "Self"), ("rsa", "RSA-HSM", "corp")]:
            first.create_certificate(
                ctx, name, make_policy(kty=kty, issuer=issuer, exportable=False)
            )
            Worker(first).drive(name)
        before = {name: first.certificate(name).version_of(None) for name in ("ec", "rsa")}
    finally:
        first.close()
    assert hsm._module_users == {}  # the module was finalised: the next open starts afresh

    second = open_ledger(hsm_settings, clock=clock)
    try:
        for name, algorithm in [("ec", "ES256"), ("rsa", "PS256")]:
            v = before[name]
            signature, used = second.sign(ctx, name, None, algorithm, digest)
            assert used.version == v.version
            verify_jws(leaf_of(v).public_key(), algorithm, signature, digest)

        # A new version: a new key pair on the token; the old version still signs.
        second.create_certificate(ctx, "rsa")
        renewed = Worker(second).drive("rsa").version_of(None)
        assert renewed.version != before["rsa"].version
        assert renewed.key_id is not None and renewed.key_id.startswith("hsm:")
        assert renewed.key_id != before["rsa"].key_id
        assert renewed.kty == "RSA-HSM" and not renewed.exportable
        signature, _ = second.sign(ctx, "rsa", None, "RS256", digest)
        verify_jws(leaf_of(renewed).public_key(), "RS256", signature, digest)
        old, _ = second.sign(ctx, "rsa", before["rsa"].version, "RS256", digest)
        verify_jws(leaf_of(before["rsa"]).public_key(), "RS256", old, digest)
    finally:
        second.close()


def test_reuse_key_keeps_the_token_key(
    hsm_settings: Settings, clock: Clock, make_policy: PolicyFactory
) -> None:
    ctx = Ctx("admin")
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        policy = make_policy(kty="EC-HSM", curve="P-384", exportable=False, reuse_key=True)
        ledger.create_certificate(ctx, "same", policy)
        first = Worker(ledger).drive("same").version_of(None)
        ledger.create_certificate(ctx, "same")
        second = Worker(ledger).drive("same").version_of(None)
        assert second.version != first.version
        assert second.key_id == first.key_id
        assert leaf_of(second).public_key() == leaf_of(first).public_key()
    finally:
        ledger.close()


def test_a_new_process_signs_with_the_token_key(
    softhsm: SoftHsm, hsm_settings: Settings, clock: Clock, make_policy: PolicyFactory
) -> None:
    ctx = Ctx("admin")
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        ledger.create_certificate(ctx, "proc", make_policy(kty="EC-HSM", exportable=False))
        v = Worker(ledger).drive("proc").version_of(None)
    finally:
        ledger.close()
    digest = hashlib.sha256(b"from another process").digest()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    env.update(softhsm.environ(), SOFTHSM2_CONF=str(softhsm.conf))
    proc = subprocess.run(
        [
            sys.executable, "-c", "from ledger.cli import main; main()",
            "--home", str(hsm_settings.home), "-o", "json",
            "key", "sign", "proc", "--alg", "ES256", "--digest", digest.hex(),
        ],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["kid"].endswith(f"/keys/proc/{v.version}")
    raw = result["value"]
    signature = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    verify_jws(leaf_of(v).public_key(), "ES256", signature, digest)


def test_concurrent_signing_shares_the_session(
    hsm_settings: Settings, clock: Clock, make_policy: PolicyFactory
) -> None:
    ctx = Ctx("admin")
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        ledger.create_certificate(ctx, "busy", make_policy(kty="EC-HSM", exportable=False))
        v = Worker(ledger).drive("busy").version_of(None)
        assert v.key_id is not None
        signer = ledger.custody.signer(v.key_id)
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        public = signer.public_key()
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            try:
                for i in range(25):
                    data = f"{seed}-{i}".encode()
                    digest = hashlib.sha256(data).digest()
                    sig = signer.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
                    public.verify(sig, data, ec.ECDSA(hashes.SHA256()))
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        # An RSA signer made from the same session signs PSS with the ABC's own arguments.
        ledger.create_certificate(ctx, "busy-rsa", make_policy(kty="RSA-HSM", exportable=False))
        rv = Worker(ledger).drive("busy-rsa").version_of(None)
        assert rv.key_id is not None
        rsa_signer = ledger.custody.signer(rv.key_id)
        assert isinstance(rsa_signer, rsa.RSAPrivateKey)
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
        sig = rsa_signer.sign(b"data", pss, hashes.SHA256())
        rsa_signer.public_key().verify(sig, b"data", pss, hashes.SHA256())
    finally:
        ledger.close()


def test_an_open_ledger_uses_keys_made_by_another_process(
    softhsm: SoftHsm, hsm_settings: Settings, clock: Clock, make_policy: PolicyFactory
) -> None:
    """A long-running worker finds the key pair that a CLI command made on the token."""
    ctx = Ctx("admin")
    ledger = open_ledger(hsm_settings, clock=clock)
    try:
        ledger.create_certificate(ctx, "first", make_policy(kty="EC-HSM", exportable=False))
        Worker(ledger).drive("first")  # this process's session is open and logged in
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
        env.update(softhsm.environ(), SOFTHSM2_CONF=str(softhsm.conf))
        proc = subprocess.run(
            [
                sys.executable, "-c", "from ledger.cli import main; main()",
                "--home", str(hsm_settings.home), "cert", "create", "second",
                "--kty", "RSA-HSM", "--issuer", "Self", "--subject", "CN=second.example",
            ],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        done = Worker(ledger).drive("second")
        assert done.operation is not None and done.operation.status == "completed"
        v = done.version_of(None)
        assert v.key_id is not None and v.key_id.startswith("hsm:") and v.kty == "RSA-HSM"
        digest = hashlib.sha256(b"made elsewhere").digest()
        signature, _ = ledger.sign(ctx, "second", None, "PS256", digest)
        verify_jws(leaf_of(v).public_key(), "PS256", signature, digest)
    finally:
        ledger.close()
