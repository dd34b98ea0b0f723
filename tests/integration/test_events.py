"""The event log: who and which request, every event type, and upcasting of old events."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.worker import WORKER, Worker
from tests.integration.conftest import PolicyFactory

REQUIRED_EVENTS = {
    "PolicyReplaced",
    "KeyPairCreated",
    "CsrIssued",
    "IssuerOrderPlaced",
    "X509Merged",
    "VersionPromoted",
    "OperationOpened",
    "CancellationRequested",
    "OperationCancelled",
    "OperationFailed",
    "OperationDeleted",
    "CertificateImported",
    "AttributesUpdated",
    "Deleted",
    "Recovered",
    "Purged",
}

EventReader = Callable[[], list[Any]]


def small_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Event Test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_for(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, public_key: Any, cn: str
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )


def merge_with_chain(ledger: Ledger, ctx: Ctx, name: str, make_policy: PolicyFactory) -> bytes:
    """Create an issuer-Unknown certificate and merge a CA-issued leaf plus chain into it."""
    cert = ledger.create_certificate(ctx, name, make_policy(issuer="Unknown"))
    csr = x509.load_der_x509_csr(base64.b64decode(cert.pending_version().csr_der or ""))
    ca_key, ca = small_ca()
    leaf = issue_for(ca_key, ca, csr.public_key(), "merged.example.com")
    pem = serialization.Encoding.PEM
    ledger.merge_certificate(ctx, name, leaf.public_bytes(pem) + ca.public_bytes(pem))
    return ca.public_bytes(serialization.Encoding.DER)


def test_every_event_names_its_actor_and_request(
    ledger: Ledger, worker: Worker, make_policy: PolicyFactory, all_events: EventReader
) -> None:
    def request() -> Ctx:
        return Ctx("admin")

    ledger.set_issuer(request(), "corp", provider="LocalCA")

    self_create = request()
    ledger.create_certificate(self_create, "self-cert", make_policy())
    worker.drive("self-cert")

    corp_create = request()
    ledger.create_certificate(corp_create, "corp-cert", make_policy(issuer="corp"))
    worker.drive("corp-cert")

    merge_with_chain(ledger, request(), "merged", make_policy)

    manual_create = request()
    ledger.create_certificate(manual_create, "manual", make_policy(issuer="Unknown"))
    cancel = request()
    ledger.cancel_operation(cancel, "manual")
    # The cancellation, and the merged certificate's near-expiry notice (its leaf lasts 30
    # days, within the default 30-day notice).
    assert worker.run_once() == 2
    ledger.delete_operation(request(), "manual")

    ledger.set_issuer(request(), "temp", provider="LocalCA")
    doomed_create = request()
    ledger.create_certificate(doomed_create, "doomed", make_policy(issuer="temp"))
    ledger.delete_issuer(request(), "temp")
    failed = worker.drive("doomed")
    assert failed.operation is not None and failed.operation.status == "failed"

    key = ec.generate_private_key(ec.SECP256R1())
    ca_key, ca = small_ca()
    leaf = issue_for(ca_key, ca, key.public_key(), "imported.example.com")
    pfx = pkcs12.serialize_key_and_certificates(None, key, leaf, [ca], serialization.NoEncryption())
    ledger.import_certificate(request(), "imported", pfx)

    ledger.update_certificate(request(), "self-cert", tags={"team": "payments"})
    ledger.delete_certificate(request(), "self-cert")
    ledger.recover_certificate(request(), "self-cert")
    ledger.delete_certificate(request(), "self-cert")
    ledger.purge_certificate(request(), "self-cert")

    events = all_events()
    names = {type(e).__name__ for e in events}
    assert not REQUIRED_EVENTS - names, f"missing events: {REQUIRED_EVENTS - names}"
    for event in events:
        assert isinstance(event.actor, str) and event.actor, event
        assert isinstance(event.request_id, str) and event.request_id, event

    # The worker acts under the request id of the create it completes.
    by_name: dict[str, list[Any]] = {}
    for event in events:
        by_name.setdefault(type(event).__name__, []).append(event)
    worker_events = [e for e in events if e.actor == WORKER]
    assert {type(e).__name__ for e in worker_events} == {
        "X509Merged",
        "VersionPromoted",
        "IssuerOrderPlaced",
        "OperationCancelled",
        "OperationFailed",
        "LifetimeActionTriggered",
    }
    [notice] = by_name["LifetimeActionTriggered"]
    assert (notice.action, notice.outcome) == ("NearExpiry", "notify")
    [order] = by_name["IssuerOrderPlaced"]
    assert order.request_id == corp_create.request_id
    [cancelled] = by_name["OperationCancelled"]
    [requested] = by_name["CancellationRequested"]
    assert requested.actor == "admin"
    assert requested.request_id == cancel.request_id
    assert cancelled.request_id == manual_create.request_id
    [fail] = by_name["OperationFailed"]
    assert fail.request_id == doomed_create.request_id
    self_merge = next(e for e in by_name["X509Merged"] if e.source == "self")
    assert (self_merge.actor, self_merge.request_id) == (WORKER, self_create.request_id)
    # Every event of one user request shares its request id.
    same_request = [e for e in events if e.request_id == self_create.request_id]
    assert {type(e).__name__ for e in same_request} >= {
        "Registered",
        "PolicyReplaced",
        "OperationOpened",
        "KeyPairCreated",
        "CsrIssued",
        "X509Merged",
        "VersionPromoted",
    }


@pytest.mark.parametrize("old_version", [1, 2])
def test_old_x509_merged_events_are_upcast(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory, old_version: int
) -> None:
    ca_der = merge_with_chain(ledger, ctx, "legacy", make_policy)
    original = ledger.certificate("legacy")
    assert original.version_of(None).chain_der != []
    stored = list(ledger.recorder.select_events(original.id))

    merged = [s for s in stored if s.topic.endswith("Certificate.X509Merged")]
    assert len(merged) == 1
    state = json.loads(merged[0].state)
    assert state["class_version"] == 3
    assert state["source"] == "merge"
    # This CA issued a bare leaf: the event records what it left out of the request.
    assert state["ca_changes"]["dns_names"] == {"requested": ["app.example.com"], "issued": []}
    del state["ca_changes"]
    if old_version == 1:
        del state["class_version"], state["source"], state["chain_der"]
    else:
        state["class_version"] = 2
    v1_state = json.dumps(state).encode()

    # The same history under a fresh aggregate id, with the merge in its old shape.
    legacy_id = uuid.uuid4()
    copied = [
        StoredEvent(
            originator_id=legacy_id,
            originator_version=s.originator_version,
            topic=s.topic,
            state=v1_state if s is merged[0] else s.state,
        )
        for s in stored
    ]
    ledger.recorder.insert_events(copied)

    old_event = ledger.mapper.to_domain_event(copied[stored.index(merged[0])])
    assert isinstance(old_event, Certificate.X509Merged)
    assert old_event.source == "merge"
    assert old_event.ca_changes == {}
    if old_version == 2:
        # v2 had a source and a chain: only the comparison with the request is filled.
        assert len(old_event.chain_der) == 1
        return
    assert old_event.chain_der == []

    rebuilt: Certificate = ledger.repository.get(legacy_id)
    assert isinstance(rebuilt, Certificate)
    assert rebuilt.version == original.version
    v = rebuilt.version_of(None)
    assert v.origin == "merge"
    assert v.chain_der == []
    expected = original.version_of(None)
    assert (v.cert_der, v.x5t, v.serial) == (expected.cert_der, expected.x5t, expected.serial)
    assert (v.not_before, v.not_after) == (expected.not_before, expected.not_after)
    # The original stream, written as v2, keeps its source and chain.
    current = ledger.certificate("legacy").version_of(None)
    assert (current.origin, len(current.chain_der)) == ("merge", 1)
    assert base64.b64decode(current.chain_der[0]) == ca_der
