"""Issuance through ACME issuer objects against a real ACME server (Debian's pebble).

pebble validates http-01 by fetching from the listener certledger runs (its `httpPort` is the
issuer's --http-port) and dns-01 from pebble-challtestsrv, where the issuer's hook publishes
the TXT record. Nonces are rejected at pebble's default 5%; validation sleeps are off.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter
from ledger.providers.acme.session import AcmeSession
from ledger.settings import Settings, WorkerSettings
from ledger.worker import Worker
from tests.integration.conftest import Clock, Openssl, build_policy
from tests.support.pebble import Pebble, start_pebble

PEM = "application/x-pem-file"
FAST = WorkerSettings(max_attempts=3, backoff=0.05, lease_seconds=5)


def acme_params(pebble: Pebble, **extra: Any) -> dict[str, Any]:
    return {
        "directory_url": pebble.directory_url,
        "email": "ops@certledger.test",
        "http_port": pebble.http_port,
        "ca_bundle": str(pebble.tls_ca_file),
        **extra,
    }


def events_of(ledger: Ledger, cert: Certificate) -> list[Any]:
    return [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(cert.id)]


def account_orders(ledger: Ledger, issuer_name: str, pebble: Pebble) -> list[str]:
    """The orders pebble holds for the issuer's account, asked of pebble itself."""
    state = ledger.issuer(Ctx("admin"), issuer_name).provider_state
    session = AcmeSession(
        pebble.directory_url,
        ledger.custody.signer(state["account_key_id"]),
        verify=str(pebble.tls_ca_file),
        account_url=state["account_url"],
    )
    return session.account_orders()


def chain_of(cert: Certificate) -> tuple[x509.Certificate, list[x509.Certificate]]:
    v = cert.version_of(None)
    assert v.cert_der is not None
    leaf = x509.load_der_x509_certificate(base64.b64decode(v.cert_der))
    return leaf, [x509.load_der_x509_certificate(base64.b64decode(c)) for c in v.chain_der]


@pytest.fixture
def acme_ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    opened = open_ledger(Settings.resolve(home=tmp_path / "home", environ={}), clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def test_http01_issuance_verifies_to_pebble_root(
    acme_ledger: Ledger, pebble: Pebble, openssl: Openssl, tmp_path: Path
) -> None:
    ctx = Ctx("admin")
    issuer = acme_ledger.set_issuer(
        ctx, "pebble", provider="acme", provider_params=acme_params(pebble)
    )
    state = issuer.provider_state
    assert state["account_url"].startswith(f"https://localhost:{pebble.acme_port}/")
    assert state["challenge"] == "http-01"
    # The account key is in custody; the issuer's state holds only its id.
    assert "PRIVATE" not in json.dumps(state)
    acme_ledger.custody.signer(state["account_key_id"])

    policy = build_policy(
        issuer="pebble",
        subject="CN=localhost",
        dns_names=("localhost",),
        content_type=PEM,
    )
    created = acme_ledger.create_certificate(ctx, "web", policy)
    assert created.require_operation().status == "inProgress"

    done = Worker(acme_ledger, FAST).drive("web", timeout=60)

    op = done.require_operation()
    assert op.status == "completed", op.status_details
    v = done.version_of(None)
    assert v.origin == "provider" and v.provider == "acme"
    assert v.order_ref is not None and "/my-order/" in v.order_ref
    assert account_orders(acme_ledger, "pebble", pebble) == [v.order_ref]

    leaf, chain = chain_of(done)
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(DNSName) == ["localhost"]
    root = x509.load_pem_x509_certificate(pebble.roots_pem().encode())
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(datetime.now(UTC))
        .build_server_verifier(DNSName("localhost"))
    )
    built = verifier.verify(leaf, chain)
    assert built[0] == leaf and built[-1] == root

    leaf_file = tmp_path / "leaf.pem"
    leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    chain_file = tmp_path / "chain.pem"
    chain_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    root_file = tmp_path / "root.pem"
    root_file.write_text(pebble.roots_pem())
    out = openssl(
        "verify", "-CAfile", root_file, "-untrusted", chain_file, "-purpose", "sslserver", leaf_file
    )
    assert f"{leaf_file}: OK" in out

    names = [type(e).__name__ for e in events_of(acme_ledger, done)]
    assert names[-3:] == ["IssuerOrderPlaced", "X509Merged", "VersionPromoted"]
    merged = next(e for e in events_of(acme_ledger, done) if type(e).__name__ == "X509Merged")
    # pebble issues for five years whatever the policy asks: the event records it.
    validity = merged.ca_changes["validity"]
    assert validity["requested"]["months"] == 12
    assert validity["issued"]["days"] > 366
    assert merged.ca_changes == v.ca_changes

    # The secret (PEM) holds the key and the CA's chain; the private key matches the leaf.
    secret, _ = acme_ledger.secret_value(ctx, "web")
    assert "PRIVATE KEY" in secret and secret.count("BEGIN CERTIFICATE") == 1 + len(chain)


def test_dns01_issuance_through_the_hook(
    acme_ledger: Ledger, pebble: Pebble, tmp_path: Path
) -> None:
    hook_log = tmp_path / "hook.log"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os, sys, urllib.request\n"
        "action = os.environ['CERTLEDGER_ACME_ACTION']\n"
        f"open({str(hook_log)!r}, 'a').write(action + ' ' + os.environ['CERTLEDGER_ACME_RECORD']"
        " + '\\n')\n"
        "path = '/set-txt' if action == 'present' else '/clear-txt'\n"
        "body = {'host': os.environ['CERTLEDGER_ACME_RECORD'] + '.',"
        " 'value': os.environ['CERTLEDGER_ACME_TXT']}\n"
        f"req = urllib.request.Request('http://127.0.0.1:{pebble.challtest_port}' + path,"
        " data=json.dumps(body).encode(), method='POST')\n"
        "urllib.request.urlopen(req, timeout=10).read()\n"
    )
    ctx = Ctx("admin")
    acme_ledger.set_issuer(
        ctx,
        "pebble-dns",
        provider="acme",
        provider_params=acme_params(
            pebble, challenge="dns-01", dns_hook=f"{sys.executable} {hook}"
        ),
    )
    policy = build_policy(
        issuer="pebble-dns",
        subject="CN=dns.certledger.test",
        dns_names=("dns.certledger.test", "www.dns.certledger.test"),
    )
    acme_ledger.create_certificate(ctx, "dns", policy)

    done = Worker(acme_ledger, FAST).drive("dns", timeout=60)

    assert done.require_operation().status == "completed", done.require_operation().status_details
    leaf, chain = chain_of(done)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(DNSName)) == [
        "dns.certledger.test",
        "www.dns.certledger.test",
    ]
    root = x509.load_pem_x509_certificate(pebble.roots_pem().encode())
    PolicyBuilder().store(Store([root])).time(datetime.now(UTC)).build_server_verifier(
        DNSName("www.dns.certledger.test")
    ).verify(leaf, chain)
    lines = hook_log.read_text().splitlines()
    assert sorted(lines) == sorted(
        [
            "present _acme-challenge.dns.certledger.test",
            "present _acme-challenge.www.dns.certledger.test",
            "cleanup _acme-challenge.dns.certledger.test",
            "cleanup _acme-challenge.www.dns.certledger.test",
        ]
    )


def test_failed_validation_fails_the_operation_with_the_cas_error(
    acme_ledger: Ledger, pebble: Pebble, tmp_path: Path
) -> None:
    ctx = Ctx("admin")
    # A hook that publishes nothing: pebble finds no TXT record.
    acme_ledger.set_issuer(
        ctx,
        "pebble-nodns",
        provider="acme",
        provider_params=acme_params(pebble, challenge="dns-01", dns_hook="true"),
    )
    acme_ledger.create_certificate(ctx, "web", build_policy())
    current = Worker(acme_ledger, FAST).drive("web").version_of(None)
    policy = build_policy(
        issuer="pebble-nodns",
        subject="CN=nodns.certledger.test",
        dns_names=("nodns.certledger.test",),
    )
    acme_ledger.create_certificate(ctx, "web", policy)

    after = Worker(acme_ledger, FAST).drive("web", timeout=60)

    op = after.require_operation()
    assert op.status == "failed"
    assert op.error_code == "AcmeUnauthorized"
    assert op.error_message == (
        "the CA could not validate nodns.certledger.test: No TXT records found for DNS challenge"
    )
    assert after.current == current.version


def test_cancellation_mid_order_deactivates_the_authorizations(
    acme_ledger: Ledger, pebble: Pebble
) -> None:
    ctx = Ctx("admin")
    # wait_seconds=0: a worker step answers the challenge and leaves the order pending.
    acme_ledger.set_issuer(
        ctx, "pebble-slow", provider="acme", provider_params=acme_params(pebble, wait_seconds=0)
    )
    policy = build_policy(issuer="pebble-slow", subject="CN=localhost", dns_names=("localhost",))
    acme_ledger.create_certificate(ctx, "slow", policy)
    worker = Worker(acme_ledger, FAST, poll_interval=30)

    assert worker.run_once() == 1  # IssuerOrderPlaced; the order is pending at the CA
    ref = acme_ledger.certificate("slow").pending_version().order_ref
    assert ref is not None
    acme_ledger.cancel_operation(ctx, "slow")
    assert worker.run_once() == 1

    op = acme_ledger.certificate("slow").require_operation()
    assert op.status == "cancelled"
    assert f"Order {ref} was cancelled at acme" in op.status_details
    state = acme_ledger.issuer(ctx, "pebble-slow").provider_state
    session = AcmeSession(
        pebble.directory_url,
        acme_ledger.custody.signer(state["account_key_id"]),
        verify=str(pebble.tls_ca_file),
        account_url=state["account_url"],
    )
    order = session.order(ref)
    authz = [session.authorization(str(u)) for u in order.authorizations]
    assert [a.body.status.name for a in authz] == ["deactivated"]
    assert order.status.name in ("invalid", "deactivated")
    assert acme_ledger.certificate("slow").current is None


@pytest.fixture(scope="module")
def eab_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A pebble that requires external account binding, rejecting 50% of nonces."""
    key = base64.urlsafe_b64encode(b"certledger-eab-hmac-key-0123456789abcdef").rstrip(b"=")
    server = start_pebble(
        Path(tmp_path_factory.mktemp("pebble-eab")),
        eab_keys={"kid-1": key.decode()},
        env={"PEBBLE_WFE_NONCEREJECT": "50"},
    )
    try:
        yield server
    finally:
        server.stop()


def test_external_account_binding_and_heavy_nonce_rejection(
    acme_ledger: Ledger, eab_pebble: Pebble
) -> None:
    ctx = Ctx("admin")
    with pytest.raises(BadParameter, match="requires external account binding"):
        acme_ledger.set_issuer(
            ctx, "bound", provider="acme", provider_params=acme_params(eab_pebble)
        )
    with pytest.raises(BadParameter, match="ACME issuer: registering an account"):
        acme_ledger.set_issuer(
            ctx,
            "bound",
            provider="acme",
            account_id="kid-1",
            password=base64.urlsafe_b64encode(b"the wrong key").decode(),
            provider_params=acme_params(eab_pebble),
        )
    issuer = acme_ledger.set_issuer(
        ctx,
        "bound",
        provider="acme",
        account_id="kid-1",
        password=eab_pebble.eab_keys["kid-1"],
        provider_params=acme_params(eab_pebble),
    )
    assert issuer.account_id == "kid-1" and issuer.credential_ref
    policy = build_policy(issuer="bound", subject="CN=localhost", dns_names=("localhost",))
    for i in range(3):
        acme_ledger.create_certificate(ctx, f"bound-{i}", policy)
        done = Worker(acme_ledger, FAST).drive(f"bound-{i}", timeout=60)
        assert done.require_operation().status == "completed", (
            done.require_operation().status_details
        )
    assert len(account_orders(acme_ledger, "bound", eab_pebble)) == 3


def test_bad_issuer_settings_are_rejected_with_the_setting_named(
    acme_ledger: Ledger, pebble: Pebble
) -> None:
    ctx = Ctx("admin")
    cases = [
        ({"email": "x@y"}, "a directory URL is required"),
        ({"directory_url": "ftp://x"}, "is not an http(s) URL"),
        ({**acme_params(pebble), "challenge": "tls-alpn-01"}, "challenge 'tls-alpn-01'"),
        ({**acme_params(pebble), "challenge": "dns-01"}, "needs a hook command"),
        ({**acme_params(pebble), "http_port": 70000}, "outside 1..65535"),
        ({**acme_params(pebble), "colour": "blue"}, "unknown setting(s) colour"),
        ({**acme_params(pebble), "ca_bundle": __file__}, "holds no PEM certificate"),
    ]
    for params, message in cases:
        with pytest.raises(BadParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
            acme_ledger.set_issuer(ctx, "bad", provider="acme", provider_params=params)
    # Without the CA bundle, pebble's TLS certificate is not trusted.
    untrusted = {k: v for k, v in acme_params(pebble).items() if k != "ca_bundle"}
    with pytest.raises(BadParameter, match="cannot reach the ACME server"):
        acme_ledger.set_issuer(ctx, "bad", provider="acme", provider_params=untrusted)


def test_emails_in_the_policy_fail_at_once(acme_ledger: Ledger, pebble: Pebble) -> None:
    ctx = Ctx("admin")
    acme_ledger.set_issuer(ctx, "pebble", provider="acme", provider_params=acme_params(pebble))
    policy = build_policy(issuer="pebble", dns_names=("localhost",), emails=("a@b.test",))
    acme_ledger.create_certificate(ctx, "mail", policy)
    op = Worker(acme_ledger, FAST).drive("mail").require_operation()
    assert (op.status, op.error_code) == ("failed", "BadParameter")
    assert op.error_message is not None and "DNS names only" in op.error_message


class Crash(BaseException):
    """Stands for the process dying."""


def test_a_crash_between_the_cas_answer_and_the_order_book_adopts_the_order(
    tmp_path: Path, clock: Clock, pebble: Pebble, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    ctx = Ctx("admin")
    first = open_ledger(settings, clock=clock)
    first.set_issuer(ctx, "pebble", provider="acme", provider_params=acme_params(pebble))
    policy = build_policy(issuer="pebble", subject="CN=localhost", dns_names=("localhost",))
    first.create_certificate(ctx, "web", policy)
    book = first.providers.services.orders
    recorded = book.replace

    def die_before_recording(issuer: str, key: str, ref: str, data: dict[str, Any]) -> Any:
        if "/my-order/" in ref:
            raise Crash("killed after the CA created the order")
        return recorded(issuer, key, ref, data)

    monkeypatch.setattr(book, "replace", die_before_recording)
    with pytest.raises(Crash):
        Worker(first, FAST).drive("web")
    first.close()
    monkeypatch.undo()

    second = open_ledger(settings, clock=clock)
    try:
        orders_before = account_orders(second, "pebble", pebble)
        assert len(orders_before) == 1  # the CA did create it
        done = Worker(second, WorkerSettings(lease_seconds=0.01)).drive("web", timeout=60)
        assert done.require_operation().status == "completed"
        assert account_orders(second, "pebble", pebble) == orders_before
        assert done.version_of(None).order_ref == orders_before[0]
    finally:
        second.close()
