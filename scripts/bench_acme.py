"""ACME issuance against pebble: certledger (create to "completed") beside the acme library.

Starts Debian's pebble (real http-01 validation of every order: PEBBLE_VA_NOSLEEP=1,
PEBBLE_AUTHZREUSE=0, nonce rejection at its default 5%) and, interleaved in the same run,
measures:

- certledger: `create_certificate` on an ACME issuer object, then the worker drives the
  operation to "completed" (order, challenge answered by certledger's listener, finalize,
  download, `X509Merged`, `VersionPromoted`; events and keys in SQLite with full sync);
- baseline: the `acme` library's own flow for the same name with a fresh key and CSR
  (`new_order`, `answer_challenge`, `poll_and_finalize`), answering on the same listener.

    python scripts/bench_acme.py [--count N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acme import challenges, client, crypto_util, messages  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from ledger.bootstrap import open_ledger  # noqa: E402
from ledger.domain.context import Ctx  # noqa: E402
from ledger.domain.policy import policy_from_options  # noqa: E402
from ledger.providers.acme.challenges import LISTENERS  # noqa: E402
from ledger.providers.acme.session import account_jwk  # noqa: E402
from ledger.settings import Settings  # noqa: E402
from ledger.worker import Worker  # noqa: E402
from tests.support.pebble import Pebble, start_pebble  # noqa: E402

NAME = "localhost"
T = TypeVar("T")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def retried(fn: Callable[..., T], *args: Any) -> T:
    """The library retries a bad nonce once; pebble rejects 5% of them, so retry more."""
    for attempt in range(10):
        try:
            return fn(*args)
        except messages.Error as exc:
            if exc.code != "badNonce" or attempt == 9:
                raise
    raise AssertionError("unreachable")


def library_flow(pebble: Pebble) -> Callable[[int], None]:
    """The acme library's documented flow, one order per call."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk, alg = account_jwk(key)
    net = client.ClientNetwork(jwk, alg=alg, verify_ssl=str(pebble.tls_ca_file))  # type: ignore[arg-type]
    directory = client.ClientV2.get_directory(pebble.directory_url, net)
    acme = client.ClientV2(directory, net)
    retried(acme.new_account, messages.NewRegistration.from_data(terms_of_service_agreed=True))
    listener = LISTENERS.get("", pebble.http_port)

    def one(_: int) -> None:
        cert_key = ec.generate_private_key(ec.SECP256R1())
        key_pem = cert_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        csr_pem = crypto_util.make_csr(key_pem, [NAME])
        order = retried(acme.new_order, csr_pem)
        tokens = []
        for authz in order.authorizations:
            if authz.body.status != messages.STATUS_PENDING:
                continue  # pebble reuses valid authorizations
            for challb in authz.body.challenges:
                if isinstance(challb.chall, challenges.HTTP01):
                    response, validation = challb.response_and_validation(jwk)
                    token = challb.chall.encode("token")
                    listener.publish(token, validation)
                    tokens.append(token)
                    retried(acme.answer_challenge, challb, response)
        done = retried(acme.poll_and_finalize, order)
        assert "BEGIN CERTIFICATE" in (done.fullchain_pem or "")
        for token in tokens:
            listener.withdraw(token)

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="certificates per side")
    parser.add_argument("--dir", type=Path, default=None, help="where the ledger lives")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="bench-acme-"))
    # Every order validated afresh: no reuse of an earlier valid authorization.
    pebble = start_pebble(work / "pebble", env={"PEBBLE_AUTHZREUSE": "0"})
    home = (args.dir or work) / "home"
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    try:
        ctx = Ctx("admin")
        ledger.set_issuer(
            ctx,
            "pebble",
            provider="acme",
            provider_params={
                "directory_url": pebble.directory_url,
                "http_port": pebble.http_port,
                "ca_bundle": str(pebble.tls_ca_file),
            },
        )
        policy = policy_from_options(
            subject=f"CN={NAME}",
            sans=[NAME],
            kty="EC",
            size=None,
            curve="P-256",
            validity_months=12,
            issuer="pebble",
            content_type=None,
        )
        worker = Worker(ledger)

        def certledger(i: int) -> None:
            name = f"acme-{i}"
            created = ledger.create_certificate(ctx, name, policy)
            done = worker.drive(name, timeout=60, interval=0.01, cert=created)
            op = done.require_operation()
            assert op.status == "completed", op.status_details

        baseline = library_flow(pebble)
        ours: list[float] = []
        theirs: list[float] = []
        certledger(-1)  # warm-up: TLS session, directory, imports
        baseline(-1)
        for i in range(args.count):
            for fn, times in ((certledger, ours), (baseline, theirs)):
                start = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - start)
    finally:
        ledger.close()
        pebble.stop()

    print(f"ACME issuance against pebble (PEBBLE_VA_NOSLEEP=1), {args.count} certificates each")
    print(f"{'flow':<40} {'median':>9} {'p95':>9} {'mean':>9}")
    for label, times in (
        ("certledger create -> completed", ours),
        ("acme library poll_and_finalize", theirs),
    ):
        print(
            f"{label:<40} {statistics.median(times):>8.3f}s {percentile(times, 0.95):>8.3f}s "
            f"{statistics.fmean(times):>8.3f}s"
        )
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"ratio of medians certledger / library: {ratio:.2f}")


if __name__ == "__main__":
    main()
