"""The three creation methods (Self, Unknown, issuer object) end to end on real SQLite."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.application import Ledger
from ledger.domain.certificate import Version
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Conflict, NotFound
from ledger.domain.policy import CertificatePolicy
from ledger.providers.base import (
    IssuerConfig,
    OrderRequest,
    OrderStatus,
    ProviderRegistry,
    ProviderServices,
)
from ledger.providers.localca import LocalCaProvider
from ledger.settings import Settings, WorkerSettings
from ledger.worker import Worker
from tests.integration.conftest import Clock, Openssl, PolicyFactory

DER = serialization.Encoding.DER
PEM_ENC = serialization.Encoding.PEM


# -- helpers ---------------------------------------------------------------


def leaf_of(v: Version) -> x509.Certificate:
    assert v.cert_der is not None
    return x509.load_der_x509_certificate(base64.b64decode(v.cert_der, validate=True))


def chain_of(v: Version) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(base64.b64decode(c)) for c in v.chain_der]


def csr_of(v: Version) -> x509.CertificateSigningRequest:
    assert v.csr_der is not None
    return x509.load_der_x509_csr(base64.b64decode(v.csr_der, validate=True))


def spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def event_names(ledger: Ledger, cert_id: UUID) -> list[str]:
    return [
        type(ledger.mapper.to_domain_event(s)).__name__
        for s in ledger.recorder.select_events(cert_id)
    ]


def snapshot(ledger: Ledger, name: str) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
    """Aggregate version, stored event count, operation and pending version of `name`."""
    cert = ledger.certificate(name)
    assert cert.operation is not None
    return (
        cert.version,
        len(ledger.recorder.select_events(cert.id)),
        dataclasses.asdict(cert.operation),
        dataclasses.asdict(cert.pending_version()),
    )


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def month_index(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


@dataclass(frozen=True)
class OpensslCa:
    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: Any


@pytest.fixture(scope="module")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory, openssl_bin: str) -> OpensslCa:
    """A CA made with the openssl command line tool."""
    folder = tmp_path_factory.mktemp("openssl-ca")
    proc = subprocess.run(
        [
            openssl_bin,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Integration Test CA/O=Fabrikam",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    return OpensslCa(folder / "ca.pem", folder / "ca.key", cert, key)


def sign_with_openssl(
    openssl: Openssl, ca: OpensslCa, csr: x509.CertificateSigningRequest, folder: Path
) -> bytes:
    """The leaf certificate (PEM) that the openssl CA issues for a CSR."""
    csr_path = write(folder / "request.pem", csr.public_bytes(PEM_ENC))
    ext = write(
        folder / "leaf.ext",
        "subjectAltName=DNS:manual.example.com\n"
        "extendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\n",
    )
    leaf_path = folder / "leaf.pem"
    openssl(
        "x509",
        "-req",
        "-in",
        csr_path,
        "-CA",
        ca.cert_path,
        "-CAkey",
        ca.key_path,
        "-set_serial",
        "0x1234abcd",
        "-days",
        "20",
        "-sha256",
        "-extfile",
        ext,
        "-out",
        leaf_path,
    )
    return leaf_path.read_bytes()


def expired_cert(ca: OpensslCa, public_key: Any) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "manual.example.com")]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=60))
        .not_valid_after(now - timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )


# -- issuer Self -------------------------------------------------------------


def test_self_signed_creation_end_to_end(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    openssl: Openssl,
    tmp_path: Path,
) -> None:
    policy = make_policy(
        subject="CN=app.example.com, O=Contoso, C=US",
        dns_names=("app.example.com", "www.example.com"),
        emails=("ops@example.com",),
        ekus=["1.3.6.1.5.5.7.3.1"],
        key_usage=["digitalSignature", "keyAgreement"],
        validity_months=7,
    )
    cert = ledger.create_certificate(ctx, "web", policy)

    op = cert.operation
    assert op is not None
    assert (op.status, op.issuer_name, op.cancellation_requested) == ("inProgress", "Self", False)
    pending = cert.pending_version()
    csr = csr_of(pending)
    assert csr.is_signature_valid
    assert pending.public_key_pem is not None
    assert spki(csr.public_key()) == spki(
        serialization.load_pem_public_key(pending.public_key_pem.encode())
    )
    # Nothing is current before the first completion.
    stored = ledger.certificate("web")
    assert stored.current is None
    with pytest.raises(NotFound):
        stored.version_of(None)
    with pytest.raises(NotFound):
        ledger.secret_value(ctx, "web")

    done = worker.drive("web")
    assert done.operation is not None
    assert done.operation.status == "completed"
    assert done.current == op.version
    v = done.versions[op.version]
    assert v.origin == "self"
    assert v.chain_der == []
    leaf = leaf_of(v)
    assert spki(leaf.public_key()) == spki(csr.public_key())

    self_pem = write(tmp_path / "self.pem", leaf.public_bytes(PEM_ENC))
    assert ": OK" in openssl("verify", "-CAfile", self_pem, "-check_ss_sig", self_pem)
    csr_pem = write(tmp_path / "csr.pem", csr.public_bytes(PEM_ENC))
    assert "verify OK" in openssl("req", "-in", csr_pem, "-verify", "-noout")

    # Subject, SANs, EKU, key usage and validity come from the policy.
    for name in (leaf.subject, csr.subject):
        assert [(a.oid, a.value) for a in name] == [
            (NameOID.COMMON_NAME, "app.example.com"),
            (NameOID.ORGANIZATION_NAME, "Contoso"),
            (NameOID.COUNTRY_NAME, "US"),
        ]
    assert leaf.issuer == leaf.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["app.example.com", "www.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.key_agreement
    assert not ku.value.key_encipherment and not ku.value.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    issued_at = leaf.not_valid_before_utc + timedelta(minutes=5)
    not_after = leaf.not_valid_after_utc
    assert month_index(not_after) - month_index(issued_at) == 7
    assert not_after.time() == issued_at.time()
    assert abs(issued_at - datetime.now(UTC)) < timedelta(minutes=2)
    assert (v.not_before, v.not_after) == (leaf.not_valid_before_utc, not_after)

    text = openssl("x509", "-in", self_pem, "-noout", "-text")
    assert "Subject: CN = app.example.com, O = Contoso, C = US" in text
    assert "DNS:app.example.com, DNS:www.example.com, email:ops@example.com" in text
    assert "TLS Web Server Authentication" in text
    assert "TLS Web Client Authentication" not in text
    assert "Digital Signature, Key Agreement" in text
    assert "CA:FALSE" in text
    assert "ASN1 OID: prime256v1" in text


# -- issuer Unknown (manual merge) --------------------------------------------


def manual_policy(make_policy: PolicyFactory) -> CertificatePolicy:
    return make_policy(
        issuer="Unknown",
        subject="CN=manual.example.com",
        dns_names=("manual.example.com",),
    )


def test_manual_creation_merges_pem_with_chain(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    openssl: Openssl,
    openssl_ca: OpensslCa,
    tmp_path: Path,
) -> None:
    cert = ledger.create_certificate(ctx, "manual", manual_policy(make_policy))
    op = cert.operation
    assert op is not None and op.status == "inProgress" and op.issuer_name == "Unknown"
    csr = csr_of(cert.pending_version())
    assert csr.is_signature_valid

    # The worker leaves a manual operation to the user.
    assert worker.advance(ledger.certificate("manual")) is False
    waited = worker.drive("manual")
    assert waited.operation is not None and waited.operation.status == "inProgress"
    assert waited.current is None

    leaf_pem = sign_with_openssl(openssl, openssl_ca, csr, tmp_path)
    bundle = leaf_pem + openssl_ca.cert_path.read_bytes()
    merged = ledger.merge_certificate(ctx, "manual", bundle)

    assert merged.operation is not None and merged.operation.status == "completed"
    assert merged.current == op.version
    stored = ledger.certificate("manual")
    v = stored.version_of(None)
    assert v.version == op.version
    assert v.origin == "merge"
    leaf = leaf_of(v)
    assert leaf == x509.load_pem_x509_certificate(leaf_pem)
    assert [c.public_bytes(DER) for c in chain_of(v)] == [openssl_ca.cert.public_bytes(DER)]
    assert v.serial == "1234abcd"
    assert "X509Merged" in event_names(ledger, stored.id)
    # The stored chain still verifies with openssl.
    ca_pem = write(tmp_path / "chain.pem", chain_of(v)[0].public_bytes(PEM_ENC))
    stored_leaf = write(tmp_path / "stored-leaf.pem", leaf.public_bytes(PEM_ENC))
    assert ": OK" in openssl("verify", "-CAfile", ca_pem, stored_leaf)


@pytest.mark.parametrize("form", ["der", "base64-der"])
def test_manual_creation_merges_der_forms(
    ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    openssl: Openssl,
    openssl_ca: OpensslCa,
    tmp_path: Path,
    form: str,
) -> None:
    cert = ledger.create_certificate(ctx, "manual", manual_policy(make_policy))
    leaf = x509.load_pem_x509_certificate(
        sign_with_openssl(openssl, openssl_ca, csr_of(cert.pending_version()), tmp_path)
    )
    der = leaf.public_bytes(DER)
    data: bytes | str = der if form == "der" else base64.b64encode(der).decode()

    merged = ledger.merge_certificate(ctx, "manual", data)

    assert merged.operation is not None and merged.operation.status == "completed"
    v = ledger.certificate("manual").version_of(None)
    assert base64.b64decode(v.cert_der or "") == der
    assert v.chain_der == []


@pytest.mark.parametrize("bad", ["other-key", "garbage", "expired"])
def test_rejected_merge_leaves_operation_unchanged(
    ledger: Ledger,
    ctx: Ctx,
    make_policy: PolicyFactory,
    openssl: Openssl,
    openssl_ca: OpensslCa,
    tmp_path: Path,
    bad: str,
) -> None:
    cert = ledger.create_certificate(ctx, "manual", manual_policy(make_policy))
    csr = csr_of(cert.pending_version())
    if bad == "other-key":
        stranger = ec.generate_private_key(ec.SECP256R1())
        other_csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(csr.subject)
            .sign(stranger, hashes.SHA256())
        )
        data = sign_with_openssl(openssl, openssl_ca, other_csr, tmp_path)
        data += openssl_ca.cert_path.read_bytes()
        expected = "not the pending key pair's"
    elif bad == "garbage":
        data = b"\x30\x82\x01\x00 definitely not a certificate"
        expected = "not a PEM, DER or base64 DER"
    else:
        data = expired_cert(openssl_ca, csr.public_key()).public_bytes(PEM_ENC)
        expected = "expired"
    before = snapshot(ledger, "manual")

    with pytest.raises(BadParameter, match=expected):
        ledger.merge_certificate(ctx, "manual", data)

    assert snapshot(ledger, "manual") == before
    after = ledger.certificate("manual")
    assert after.current is None
    assert "X509Merged" not in event_names(ledger, after.id)

    # The operation is still open: the right certificate merges afterwards.
    good = sign_with_openssl(openssl, openssl_ca, csr, tmp_path)
    done = ledger.merge_certificate(ctx, "manual", good)
    assert done.operation is not None and done.operation.status == "completed"


def test_merge_into_a_self_operation_is_refused(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory, openssl_ca: OpensslCa
) -> None:
    cert = ledger.create_certificate(ctx, "selfish", make_policy())
    data = expired_cert(openssl_ca, csr_of(cert.pending_version()).public_key())
    before = snapshot(ledger, "selfish")
    with pytest.raises(Conflict, match="only issuer Unknown merges"):
        ledger.merge_certificate(ctx, "selfish", data.public_bytes(PEM_ENC))
    assert snapshot(ledger, "selfish") == before


# -- issuer objects -----------------------------------------------------------


def test_issuer_object_creation_with_local_ca(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    openssl: Openssl,
    tmp_path: Path,
) -> None:
    issuer = ledger.set_issuer(ctx, "corp", provider="LocalCA")
    assert issuer.provider == "localca"
    ca_pem = issuer.provider_state["ca_cert_pem"]
    ca = x509.load_pem_x509_certificate(ca_pem.encode())

    cert = ledger.create_certificate(
        ctx, "api", make_policy(issuer="corp", subject="CN=api.corp.example")
    )
    op = cert.operation
    assert op is not None and op.status == "inProgress" and op.issuer_name == "corp"

    done = worker.drive("api")

    assert done.operation is not None and done.operation.status == "completed"
    assert done.current == op.version
    v = done.versions[op.version]
    assert v.origin == "provider"
    assert v.provider == "localca"
    assert v.order_ref == f"{op.request_id}/{op.version}"
    assert [c.public_bytes(DER) for c in chain_of(v)] == [ca.public_bytes(DER)]
    leaf = leaf_of(v)
    assert leaf.issuer == ca.subject
    assert spki(leaf.public_key()) == spki(csr_of(v).public_key())
    names = event_names(ledger, done.id)
    assert names.index("IssuerOrderPlaced") < names.index("X509Merged")
    assert names[-1] == "VersionPromoted"

    ca_file = write(tmp_path / "ca.pem", ca_pem)
    leaf_file = write(tmp_path / "leaf.pem", leaf.public_bytes(PEM_ENC))
    assert ": OK" in openssl("verify", "-CAfile", ca_file, leaf_file)


@pytest.mark.parametrize(
    ("issuer", "expected"), [("sleepy", "is disabled"), ("ghost", "does not exist")]
)
def test_disabled_or_missing_issuer_is_rejected_at_create(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory, issuer: str, expected: str
) -> None:
    ledger.set_issuer(ctx, "sleepy", provider="LocalCA", enabled=False)
    with pytest.raises(BadParameter, match=expected):
        ledger.create_certificate(ctx, "api", make_policy(issuer=issuer))
    assert ledger.find_certificate("api") is None


# -- versions -------------------------------------------------------------------


def test_current_version_is_untouched_while_a_new_one_is_pending(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    policy = make_policy(content_type="application/x-pem-file")
    ledger.create_certificate(ctx, "rotating", policy)
    first = worker.drive("rotating")
    first_id = first.current
    assert first_id is not None
    first_v = first.versions[first_id]
    first_x5t = first_v.x5t
    first_secret, _ = ledger.secret_value(ctx, "rotating")

    second = ledger.create_certificate(ctx, "rotating", policy)
    assert second.operation is not None and second.operation.version != first_id

    pending = ledger.certificate("rotating")
    assert pending.current == first_id
    assert pending.version_of(None).x5t == first_x5t
    assert pending.version_of(None).superseded_at is None
    assert ledger.secret_value(ctx, "rotating")[0] == first_secret
    with pytest.raises(NotFound):  # the pending version is not readable yet
        pending.version_of(second.operation.version)

    done = worker.drive("rotating")
    assert done.current == second.operation.version
    new_v = done.version_of(None)
    assert new_v.x5t != first_x5t
    assert new_v.superseded_at is None
    old = done.versions[first_id]
    assert old.superseded_at is not None
    assert new_v.promoted_at is not None and old.superseded_at == new_v.promoted_at
    assert ledger.secret_value(ctx, "rotating")[0] != first_secret
    assert ledger.secret_value(ctx, "rotating", first_id)[0] == first_secret


# -- conflicts --------------------------------------------------------------------


def test_create_while_in_progress_conflicts(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "busy", make_policy())
    before = snapshot(ledger, "busy")
    with pytest.raises(Conflict, match="already has an operation in progress"):
        ledger.create_certificate(ctx, "busy", make_policy(subject="CN=other.example.com"))
    with pytest.raises(Conflict):
        ledger.create_certificate(ctx, "busy")
    assert snapshot(ledger, "busy") == before


def test_deleted_name_conflicts_until_purged(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "gone", make_policy())
    old_version = worker.drive("gone").current
    ledger.delete_certificate(ctx, "gone")

    for policy in (make_policy(), None):
        with pytest.raises(Conflict) as info:
            ledger.create_certificate(ctx, "gone", policy)
        assert info.value.inner_code == "ObjectIsDeletedButRecoverable"
    assert ledger.deleted_certificate("gone").is_deleted

    ledger.purge_certificate(ctx, "gone")
    with pytest.raises(BadParameter, match="needs a policy"):
        ledger.create_certificate(ctx, "gone")
    cert = ledger.create_certificate(ctx, "gone", make_policy())
    done = worker.drive("gone")
    assert done.operation is not None and done.operation.status == "completed"
    assert cert.generation == 2
    assert list(done.versions) == [done.current]
    assert done.current != old_version


# -- policies and keys --------------------------------------------------------------


def test_policy_is_required_first_then_reused_then_replaced(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    with pytest.raises(BadParameter, match="needs a policy"):
        ledger.create_certificate(ctx, "pol")
    assert ledger.find_certificate("pol") is None

    first = make_policy(subject="CN=first.example.com")
    ledger.create_certificate(ctx, "pol", first)
    worker.drive("pol")
    again = ledger.create_certificate(ctx, "pol")
    assert again.policy == first.to_kv_json()
    assert again.pending_version().policy_fingerprint == first.fingerprint()
    done = worker.drive("pol")
    assert done.version_of(None).x5t is not None
    assert leaf_of(done.version_of(None)).subject.rfc4514_string() == "CN=first.example.com"
    assert event_names(ledger, done.id).count("PolicyReplaced") == 1

    second = make_policy(subject="CN=second.example.com")
    replaced = ledger.create_certificate(ctx, "pol", second)
    assert replaced.policy == second.to_kv_json()
    names = event_names(ledger, replaced.id)
    assert names.count("PolicyReplaced") == 2
    assert names[-4:] == ["PolicyReplaced", "OperationOpened", "KeyPairCreated", "CsrIssued"]
    done = worker.drive("pol")
    assert leaf_of(done.version_of(None)).subject.rfc4514_string() == "CN=second.example.com"


@pytest.mark.parametrize("reuse", [True, False])
def test_reuse_key(
    ledger: Ledger,
    ctx: Ctx,
    worker: Worker,
    make_policy: PolicyFactory,
    all_events: Any,
    reuse: bool,
) -> None:
    policy = make_policy(reuse_key=reuse)
    ledger.create_certificate(ctx, "keyed", policy)
    first = worker.drive("keyed").version_of(None)
    ledger.create_certificate(ctx, "keyed", policy)
    second = worker.drive("keyed").version_of(None)

    key_events = [e for e in all_events() if type(e).__name__ == "KeyPairCreated"]
    assert [e.reused for e in key_events] == [False, reuse]
    assert second.key_reused is reuse
    assert (second.key_id == first.key_id) is reuse
    assert (second.public_key_pem == first.public_key_pem) is reuse
    assert (spki(leaf_of(second).public_key()) == spki(leaf_of(first).public_key())) is reuse
    assert second.x5t != first.x5t


def test_reuse_key_needs_the_same_key_type(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "keyed", make_policy(reuse_key=True))
    first = worker.drive("keyed").version_of(None)
    ledger.create_certificate(ctx, "keyed", make_policy(reuse_key=True, curve="P-384"))
    second = worker.drive("keyed").version_of(None)
    assert second.key_reused is False
    assert second.key_id != first.key_id
    assert second.crv == "P-384"


# -- cancellation ----------------------------------------------------------------------


def test_cancel_and_delete_a_manual_operation(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    created = ledger.create_certificate(ctx, "manual", manual_policy(make_policy))
    pending_version = created.pending_version().version

    requested = ledger.cancel_operation(ctx, "manual")
    assert requested.operation is not None
    assert requested.operation.cancellation_requested is True
    assert requested.operation.status == "inProgress"
    assert ledger.certificate("manual").operation == requested.operation

    assert worker.advance(ledger.certificate("manual")) is True
    cancelled = ledger.certificate("manual")
    assert cancelled.operation is not None
    assert cancelled.operation.status == "cancelled"
    assert cancelled.operation.closed_at is not None
    assert cancelled.current is None
    with pytest.raises(Conflict, match="already cancelled"):
        ledger.merge_certificate(ctx, "manual", b"irrelevant")

    ledger.delete_operation(ctx, "manual")
    after = ledger.find_certificate("manual")
    assert after is not None
    assert after.operation is None
    assert pending_version not in after.versions
    names = event_names(ledger, after.id)
    assert names[-3:] == ["CancellationRequested", "OperationCancelled", "OperationDeleted"]
    with pytest.raises(NotFound):
        ledger.certificate("manual")


def test_cancel_a_self_operation_before_the_worker_runs(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "quick", make_policy())
    current = worker.drive("quick").current
    created = ledger.create_certificate(ctx, "quick")
    ledger.cancel_operation(ctx, "quick")

    assert worker.run_once() == 1

    cert = ledger.certificate("quick")
    assert cert.operation is not None and cert.operation.status == "cancelled"
    assert cert.current == current
    pending = cert.versions[created.pending_version().version]
    assert pending.cert_der is None and pending.promoted_at is None
    names = event_names(ledger, cert.id)
    assert names[-2:] == ["CancellationRequested", "OperationCancelled"]
    assert names.count("VersionPromoted") == 1
    assert names.count("X509Merged") == 1
    assert worker.run_once() == 0


# -- failures ----------------------------------------------------------------------------


class ExplodingProvider(LocalCaProvider):
    """A provider whose CA cannot be reached (its issuer set-up is the local CA's)."""

    def place_order(self, request: OrderRequest) -> OrderStatus:
        raise RuntimeError("CA endpoint unreachable")

    def poll(self, issuer: IssuerConfig, order_ref: str) -> OrderStatus:
        raise AssertionError("no order was ever placed")


class RejectingProvider(ExplodingProvider):
    """A provider whose CA turns every order down."""

    def place_order(self, request: OrderRequest) -> OrderStatus:
        return OrderStatus(
            order_ref="order-1",
            state="failed",
            error_code="PolicyViolation",
            error_message="the CA does not issue for this domain",
        )


@pytest.mark.parametrize(
    ("provider", "code", "message"),
    [
        ("exploding", "ProviderError", "exploding: CA endpoint unreachable"),
        ("rejecting", "PolicyViolation", "the CA does not issue for this domain"),
    ],
)
def test_provider_failure_fails_the_operation(
    settings: Settings,
    ledger: Ledger,
    clock: Clock,
    ctx: Ctx,
    make_policy: PolicyFactory,
    provider: str,
    code: str,
    message: str,
) -> None:
    registry = ProviderRegistry(
        ProviderServices(custody=ledger.custody, now=clock),
        {"exploding": ExplodingProvider, "rejecting": RejectingProvider},
    )
    failing_ledger = Ledger(settings, ledger.custody, registry, clock=clock)
    try:
        worker = Worker(failing_ledger, WorkerSettings(max_attempts=3, backoff=0.01))
        failing_ledger.create_certificate(ctx, "svc", make_policy())
        current = worker.drive("svc").version_of(None)

        failing_ledger.set_issuer(ctx, "flaky", provider=provider)
        cert = failing_ledger.create_certificate(ctx, "svc", make_policy(issuer="flaky"))
        failing = cert.pending_version().version

        after = worker.drive("svc")

        op = after.operation
        assert op is not None
        assert op.version == failing
        assert op.status == "failed"
        assert op.error_code == code
        assert op.error_message is not None and message in op.error_message
        assert op.closed_at is not None
        assert after.current == current.version
        assert after.version_of(None) == current
        assert after.versions[failing].cert_der is None
        assert after.versions[failing].promoted_at is None
        assert failing_ledger.secret_value(ctx, "svc")[1].version == current.version
        names = event_names(failing_ledger, after.id)
        assert names[-1] == "OperationFailed"
        # An unreachable CA is retried (with backoff) before the operation fails; a CA's
        # refusal is final at once.
        retries = 2 if provider == "exploding" else 0
        assert names.count("RetryScheduled") == retries
        if retries:
            assert op.error_message.endswith("(gave up after 3 attempts)")
        assert worker.run_once() == 0
    finally:
        failing_ledger.close()


def test_failed_operation_allows_a_new_create(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.set_issuer(ctx, "temp", provider="LocalCA")
    ledger.create_certificate(ctx, "orphan", make_policy(issuer="temp"))
    ledger.delete_issuer(ctx, "temp")

    failed = worker.drive("orphan")
    assert failed.operation is not None
    assert failed.operation.status == "failed"
    assert failed.operation.error_code == "IssuerNotFound"
    assert failed.current is None

    ledger.create_certificate(ctx, "orphan", make_policy())
    done = worker.drive("orphan")
    assert done.operation is not None and done.operation.status == "completed"


def certificate_ids(ledger: Ledger) -> set[str]:
    return {
        str(n.originator_id)
        for n in ledger.recorder.select_notifications(start=1, limit=10000)
        if n.topic.endswith("Certificate.Registered")
    }


def test_rejected_creates_store_nothing(
    ledger: Ledger, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    with pytest.raises(BadParameter):
        ledger.create_certificate(ctx, "nothing", make_policy(issuer="ghost"))
    with pytest.raises(BadParameter):
        ledger.create_certificate(ctx, "nothing")
    assert certificate_ids(ledger) == set()
    assert ledger.find_certificate("nothing") is None


def test_drive_honours_cancellation_of_a_manual_operation(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "waiting", manual_policy(make_policy))
    assert worker.drive("waiting").require_operation().status == "inProgress"
    ledger.cancel_operation(ctx, "waiting")
    assert worker.drive("waiting").require_operation().status == "cancelled"
