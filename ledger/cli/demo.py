"""`certledger demo`: the three creation methods, and what an auditor sees."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.domain.certificate import Certificate
from ledger.domain.policy import policy_from_options


def _timeline(state: State, cert: Certificate) -> None:
    for event in state.ledger.repository.event_store.get(cert.id):
        version = getattr(event, "version", "")
        click.echo(
            f"  {event.timestamp:%H:%M:%S.%f}  {type(event).__name__:<22}"
            f" {str(version)[:8]:<8}  actor={event.actor}  request={event.request_id[:8]}"
        )


def _summary(state: State, cert: Certificate) -> None:
    v = cert.version_of(None)
    assert v.cert_der is not None
    leaf = x509.load_der_x509_certificate(base64.b64decode(v.cert_der))
    click.echo(f"  version {v.version}  origin={v.origin}  x5t={v.x5t}")
    click.echo(f"  subject {leaf.subject.rfc4514_string()}  issuer {leaf.issuer.rfc4514_string()}")
    click.echo(f"  valid {v.not_before:%Y-%m-%d} .. {v.not_after:%Y-%m-%d}")


@click.command("demo")
@pass_state
def demo(state: State) -> None:
    """Create one certificate by each method and print their event history.

    \b
    Example:
      certledger --home /tmp/demo demo
    """
    from ledger.pki import generate_private_key, make_ca, sign_csr
    from ledger.profile import profile_from_policy
    from ledger.worker import Worker

    ledger = state.ledger
    worker = Worker(ledger)
    click.echo(f"ledger home: {state.settings.home}")

    click.echo("\n1. Self-signed (issuer Self)")
    policy = policy_from_options(
        subject="CN=self.demo.example",
        sans=["self.demo.example"],
        kty="EC",
        size=None,
        curve="P-256",
        validity_months=12,
        issuer="Self",
        content_type=None,
    )
    ledger.create_certificate(state.ctx(), "demo-self", policy)
    cert = worker.drive("demo-self")
    _summary(state, cert)

    click.echo("\n2. Manual (issuer Unknown): the vault makes the key and CSR, a CA signs it")
    policy = policy_from_options(
        subject="CN=manual.demo.example",
        sans=["manual.demo.example"],
        kty="RSA",
        size=2048,
        curve=None,
        validity_months=6,
        issuer="Unknown",
        content_type=None,
    )
    cert = ledger.create_certificate(state.ctx(), "demo-manual", policy)
    csr_der = cert.pending_version().csr_der
    assert csr_der is not None
    now = datetime.now(UTC)
    outside_key = generate_private_key("EC", None, "P-256")
    outside_ca = make_ca(outside_key, "Outside Demo CA", now=now)
    signed = sign_csr(
        x509.load_der_x509_csr(base64.b64decode(csr_der)),
        ca_key=outside_key,
        ca_cert=outside_ca,
        profile=profile_from_policy(policy),
        now=now,
    )
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (signed, outside_ca))
    cert = ledger.merge_certificate(state.ctx(), "demo-manual", pem)
    _summary(state, cert)

    click.echo("\n3. Through an issuer object (provider LocalCA, offline)")
    ledger.set_issuer(state.ctx(), "demo-ca", provider="LocalCA")
    policy = policy_from_options(
        subject="CN=issued.demo.example",
        sans=["issued.demo.example"],
        kty="EC",
        size=None,
        curve="P-384",
        validity_months=3,
        issuer="demo-ca",
        content_type="application/x-pem-file",
    )
    ledger.create_certificate(state.ctx(), "demo-issued", policy)
    cert = worker.drive("demo-issued")
    _summary(state, cert)

    click.echo("\nWhat an auditor replays: every event of each certificate, in order")
    for name in ("demo-self", "demo-manual", "demo-issued"):
        click.echo(f"\n{name}")
        _timeline(state, ledger.certificate(name))


COMMANDS = [demo]
