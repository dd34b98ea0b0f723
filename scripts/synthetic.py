"""Synthetic ledgers for the benchmarks: many certificates written in bulk."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from ledger.application import Ledger
from ledger.domain.certificate import Certificate, X509Facts
from ledger.domain.context import Ctx
from ledger.domain.policy import CertificatePolicy, policy_from_options
from ledger.pki import generate_private_key, self_signed, x5t
from ledger.profile import profile_from_policy

CTX = Ctx("bench")


def add_self_signed_version(cert: Certificate, pem: str, facts: X509Facts) -> None:
    """One completed self-signed EC P-256 version, as the worker would record it."""
    cert.open_operation(CTX, uuid.uuid4().hex, "Self", "application/x-pkcs12")
    cert.create_key_pair(
        CTX,
        key_id=uuid.uuid4().hex,
        kty="EC",
        key_size=None,
        crv="P-256",
        public_key_pem=pem,
        exportable=True,
        reused=False,
    )
    cert.issue_csr(CTX, "Q1NS", "00")
    cert.merge_x509(CTX, facts, source="self")
    cert.promote(CTX)


def bench_policy() -> CertificatePolicy:
    """The policy of the benchmarks' certificates: self-signed EC P-256, 12 months."""
    return policy_from_options(
        subject="CN=bench.example",
        sans=["bench.example"],
        kty="EC",
        size=None,
        curve="P-256",
        validity_months=12,
        issuer="Self",
        content_type=None,
    )


def sample_facts() -> tuple[str, X509Facts]:
    """One real certificate (public facts only) shared by the synthetic versions."""
    return _version_facts(bench_policy(), datetime.now(UTC))


def generate(ledger: Ledger, certs: int, offset: int = 0, batch: int = 500) -> int:
    """Write `certs` certificates, two versions each, in bulk; returns the events written."""
    policy = bench_policy()
    pem, facts = sample_facts()
    written = 0
    for start in range(offset, offset + certs, batch):
        aggregates = []
        for i in range(start, min(start + batch, offset + certs)):
            cert = Certificate.register(CTX, f"cert-{i:07d}")
            cert.replace_policy(CTX, policy.to_kv_json(), policy.fingerprint())
            for _ in range(2):
                add_self_signed_version(cert, pem, facts)
            written += len(cert.pending_events)
            aggregates.append(cert)
        ledger.save(*aggregates)
    return written


def _version_facts(policy: Any, issued: datetime) -> tuple[str, X509Facts]:
    key = generate_private_key("EC", None, "P-256")
    cert = self_signed(key, profile_from_policy(policy), now=issued)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    facts = X509Facts(
        cert_der=base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        chain_der=[],
        x5t=x5t(cert),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    return pem, facts


def generate_lineage(ledger: Ledger, certs: int, versions: int = 3, batch: int = 500) -> int:
    """`certs` certificates with `versions` versions each, closer to a real ledger than
    `generate`: every version has its own key and certificate, issued 150 days after the one
    before, and the policy (one per certificate) alternates between 12 and 6 months of
    validity, so versions overlap and some leave gaps. Returns the events written."""
    now = datetime.now(UTC)
    written = 0
    for start in range(0, certs, batch):
        aggregates = []
        for i in range(start, min(start + batch, certs)):
            name = f"cert-{i:07d}"
            policies = [
                policy_from_options(
                    subject=f"CN={name}.example",
                    sans=[f"{name}.example"],
                    kty="EC",
                    size=None,
                    curve="P-256",
                    validity_months=months,
                    issuer="Self",
                    content_type=None,
                )
                for months in (12, 6)
            ]
            cert = Certificate.register(CTX, name)
            for n in range(versions):
                policy = policies[n % 2]
                issued = now - timedelta(days=150 * (versions - 1 - n))
                pem, facts = _version_facts(policy, issued)
                cert.replace_policy(CTX, policy.to_kv_json(), policy.fingerprint())
                add_self_signed_version(cert, pem, facts)
            written += len(cert.pending_events)
            aggregates.append(cert)
        ledger.save(*aggregates)
    return written
