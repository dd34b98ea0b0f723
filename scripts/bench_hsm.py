"""Keys on a PKCS#11 token against keys in process: generation, signing, `Ledger.sign`.

In one run, for each key type, it times:
- key generation on the token (CKA_TOKEN, sensitive) vs `cryptography` in process;
- one signature over a SHA-256/384 digest: on the token (through the ledger's signer
  objects) vs `cryptography`'s own key;
- `Ledger.sign` (permission check, version lookup, custody, signature) with an
  RSA-HSM / EC-HSM certificate vs an RSA / EC certificate of the same ledger;
- creation to "completed" (self-signed) of HSM vs software certificates.
Rounds are interleaved so that drift in the machine's load affects both sides alike.

By default it makes a SoftHSM2 token in a temporary directory (Debian's softhsm2
package). Give --module/--token/--pin to measure a real token instead.

    python scripts/bench_hsm.py [--count N] [--rsa-count N] [--module SO --token LABEL --pin PIN]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.policy import CertificatePolicy, policy_from_options
from ledger.keys.pkcs11 import Pkcs11Config, Pkcs11Custody
from ledger.pki import generate_private_key
from ledger.settings import Settings
from ledger.worker import Worker

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)

Row = tuple[str, str, float, float]  # (what, key, baseline seconds, token seconds)


class NoIndex:
    def hsm_key_ids(self, owner: str) -> list[str]:
        return []


def interleaved(
    count: int, baseline: Callable[[int], None], measured: Callable[[int], None]
) -> tuple[float, float]:
    """Mean seconds per call of each, over 5 alternating rounds after one warm-up call."""
    baseline(-1)
    measured(-1)
    times: tuple[list[float], list[float]] = ([], [])
    per_round = max(1, count // 5)
    done = 0
    for _ in range(5):
        for side, fn in enumerate((baseline, measured)):
            start = time.perf_counter()
            for i in range(per_round):
                fn(done + i)
            times[side].append((time.perf_counter() - start) / per_round)
        done += per_round
    return statistics.mean(times[0]), statistics.mean(times[1])


def softhsm_token(folder: Path) -> tuple[str, str, str]:
    """Make a SoftHSM2 token in `folder`; returns (module, label, PIN)."""
    util = shutil.which("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if Path(m).is_file()), None)
    if util is None or module is None:
        raise SystemExit("SoftHSM2 is needed: apt-get install -y softhsm2 (or give --module)")
    tokens = folder / "tokens"
    tokens.mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "bench", "bench-pin"
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-pin"],
        check=True,
        capture_output=True,
    )
    return module, label, pin


KEY_SPECS = [  # (kty, RSA size, curve, hash)
    ("RSA", 2048, None, hashes.SHA256()),
    ("EC", None, "P-256", hashes.SHA256()),
    ("EC", None, "P-384", hashes.SHA384()),
]


def key_name(kty: str, size: int | None, crv: str | None) -> str:
    return f"RSA-{size}" if kty == "RSA" else f"EC {crv}"


def signing(key: object, hash_alg: hashes.HashAlgorithm) -> Callable[[int], None]:
    """Sign one digest with `key` per call (PKCS#1 v1.5 or ECDSA)."""
    digest = hashlib.new(hash_alg.name, b"bench").digest()
    prehashed = utils.Prehashed(hash_alg)
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key

        def sign_rsa(_: int) -> None:
            rsa_key.sign(digest, padding.PKCS1v15(), prehashed)

        return sign_rsa
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ec_key = key

    def sign_ec(_: int) -> None:
        ec_key.sign(digest, ec.ECDSA(prehashed))

    return sign_ec


def bench_keys(config: Pkcs11Config, count: int, rsa_count: int) -> list[Row]:
    rows: list[Row] = []
    custody = Pkcs11Custody(config, NoIndex())
    try:
        for kty, size, crv, hash_alg in KEY_SPECS:
            n = rsa_count if kty == "RSA" else count

            def in_process(
                _: int, kty: str = kty, size: int | None = size, crv: str | None = crv
            ) -> None:
                generate_private_key(kty, size, crv)

            def on_token(
                i: int, kty: str = kty, size: int | None = size, crv: str | None = crv
            ) -> None:
                custody.generate(f"bench:{i}", f"{kty}-HSM", size, crv)

            gen_n = max(5, n // 10) if kty == "RSA" else max(5, n // 4)
            base, token = interleaved(gen_n, in_process, on_token)
            rows.append(("generate", key_name(kty, size, crv), base, token))

            soft_key = generate_private_key(kty, size, crv)
            handle = custody.generate("bench:sign", f"{kty}-HSM", size, crv)
            hsm_key = custody.signer(handle.key_id)
            base, token = interleaved(n, signing(soft_key, hash_alg), signing(hsm_key, hash_alg))
            rows.append(("sign", key_name(kty, size, crv), base, token))
    finally:
        custody.close()
    return rows


def self_policy(kty: str, size: int | None, crv: str | None) -> CertificatePolicy:
    return policy_from_options(
        subject="CN=bench.example",
        sans=["bench.example"],
        kty=kty,
        size=size,
        curve=crv,
        validity_months=12,
        issuer="Self",
        content_type=None,
    )


def bench_ledger(settings: Settings, count: int, rsa_count: int) -> list[Row]:
    rows: list[Row] = []
    ledger = open_ledger(settings)
    worker = Worker(ledger)
    ctx = Ctx("admin")

    def creating(prefix: str, policy: CertificatePolicy) -> Callable[[int], None]:
        def create(i: int) -> None:
            name = f"{prefix}-{i + 1}"
            accepted = ledger.create_certificate(ctx, name, policy)
            assert worker.drive(name, cert=accepted).require_operation().status == "completed"

        return create

    def signing_with(name: str, alg: str) -> Callable[[int], None]:
        digest = hashlib.sha256(b"bench").digest()

        def sign(_: int) -> None:
            ledger.sign(ctx, name, None, alg, digest)

        return sign

    try:
        for kty, size, crv, alg in [("RSA", 2048, None, "RS256"), ("EC", None, "P-256", "ES256")]:
            n = rsa_count if kty == "RSA" else count
            soft = creating(f"soft-{kty}", self_policy(kty, size, crv))
            hard = creating(f"hsm-{kty}", self_policy(f"{kty}-HSM", size, crv))
            create_n = max(5, n // 10) if kty == "RSA" else max(5, n // 5)
            base, token = interleaved(create_n, soft, hard)
            rows.append(("create to completed", key_name(kty, size, crv), base, token))

            signed = interleaved(
                n, signing_with(f"soft-{kty}-1", alg), signing_with(f"hsm-{kty}-1", alg)
            )
            rows.append((f"Ledger.sign {alg}", key_name(kty, size, crv), *signed))
    finally:
        ledger.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="EC signatures per side")
    parser.add_argument("--rsa-count", type=int, default=200, help="RSA signatures per side")
    parser.add_argument("--module", help="PKCS#11 module (default: a fresh SoftHSM2 token)")
    parser.add_argument("--token", help="token label (with --module)")
    parser.add_argument("--pin", help="user PIN (with --module)")
    parser.add_argument("--dir", default=None, help="where to make the ledger (default: $TMPDIR)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        if args.module:
            if not (args.token and args.pin):
                raise SystemExit("--module needs --token and --pin")
            module, label, pin = args.module, args.token, args.pin
        else:
            module, label, pin = softhsm_token(folder)
        config = Pkcs11Config(Path(module), label, pin)
        env = {
            "CERTLEDGER_PKCS11_MODULE": module,
            "CERTLEDGER_PKCS11_TOKEN": label,
            "CERTLEDGER_PKCS11_PIN": pin,
        }
        settings = Settings.resolve(home=folder / "home", environ=env)
        rows = bench_keys(config, args.count, args.rsa_count)
        rows += bench_ledger(settings, args.count, args.rsa_count)
    print(f"token: {label!r} in {module}")
    print(
        f"{'operation':<22} {'key':<9} {'in process':>11} {'token':>10} {'ratio':>7} {'token/s':>9}"
    )
    for what, key, base, token in rows:
        print(
            f"{what:<22} {key:<9} {base * 1000:>9.3f}ms {token * 1000:>8.3f}ms"
            f" {token / base:>6.2f}x {1 / token:>9.1f}"
        )


if __name__ == "__main__":
    main()
