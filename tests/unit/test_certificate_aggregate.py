"""The Certificate aggregate's rules, without storage or cryptography."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.certificate import (
    CANCELLED,
    COMPLETED,
    FAILED,
    Certificate,
    X509Facts,
    certificate_id,
    check_name,
)
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Conflict, NotFound, PendingNotFound

CTX = Ctx("alice", "req-1")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def facts(serial: str = "01") -> X509Facts:
    return X509Facts(
        cert_der="Y2VydA==",
        chain_der=[],
        x5t="x5t-" + serial,
        serial=serial,
        not_before=NOW,
        not_after=NOW + timedelta(days=365),
    )


def opened(version: str = "v1", issuer: str = "Self") -> Certificate:
    cert = Certificate.register(CTX, "web")
    cert.replace_policy(CTX, {"issuer": {"name": issuer}}, "fp1")
    cert.open_operation(CTX, version, issuer, "application/x-pkcs12")
    cert.create_key_pair(
        CTX,
        key_id="k1",
        kty="EC",
        key_size=None,
        crv="P-256",
        public_key_pem="PUB",
        exportable=True,
        reused=False,
    )
    cert.issue_csr(CTX, "Q1NS", "abc")
    return cert


def completed() -> Certificate:
    cert = opened()
    cert.merge_x509(CTX, facts(), source="self")
    cert.promote(CTX)
    return cert


def test_names_are_checked_and_ids_case_insensitive() -> None:
    assert certificate_id("Web") == certificate_id("web")
    with pytest.raises(BadParameter, match="invalid"):
        check_name("bad_name!")
    with pytest.raises(BadParameter):
        Certificate.register(CTX, "x" * 128)


def test_every_event_carries_actor_and_request_id() -> None:
    cert = completed()
    names = [type(e).__name__ for e in cert.pending_events]
    assert names == [
        "Registered",
        "PolicyReplaced",
        "OperationOpened",
        "KeyPairCreated",
        "CsrIssued",
        "X509Merged",
        "VersionPromoted",
    ]
    assert all((e.actor, e.request_id) == ("alice", "req-1") for e in cert.pending_events)


def test_new_version_becomes_current_only_on_promotion() -> None:
    cert = completed()
    assert cert.current == "v1"
    cert.open_operation(Ctx("bob"), "v2", "Unknown", "application/x-pkcs12")
    assert cert.current == "v1"
    assert cert.version_of(None).version == "v1"
    with pytest.raises(NotFound):
        cert.version_of("v2")  # no certificate yet
    cert.create_key_pair(
        CTX,
        key_id="k2",
        kty="EC",
        key_size=None,
        crv="P-256",
        public_key_pem="PUB2",
        exportable=True,
        reused=False,
    )
    cert.merge_x509(CTX, facts("02"), source="merge")
    assert cert.current == "v1"
    cert.promote(CTX)
    assert cert.current == "v2"
    assert cert.versions["v1"].superseded_at is not None
    assert cert.require_operation().status == COMPLETED


def test_create_while_in_progress_is_a_conflict() -> None:
    cert = opened()
    with pytest.raises(Conflict, match="in progress"):
        cert.open_operation(CTX, "v2", "Self", "application/x-pkcs12")


def test_first_operation_needs_a_policy() -> None:
    cert = Certificate.register(CTX, "web")
    with pytest.raises(BadParameter, match="policy"):
        cert.open_operation(CTX, "v1", "Self", "application/x-pkcs12")


def test_same_policy_is_not_replaced_twice() -> None:
    cert = completed()
    before = len(cert.pending_events)
    cert.replace_policy(CTX, {"issuer": {"name": "Self"}}, "fp1")
    assert len(cert.pending_events) == before
    cert.replace_policy(CTX, {"issuer": {"name": "Unknown"}}, "fp2")
    assert type(cert.pending_events[-1]).__name__ == "PolicyReplaced"


def test_promotion_needs_a_certificate() -> None:
    cert = opened()
    with pytest.raises(Conflict, match="no certificate"):
        cert.promote(CTX)


def test_cancellation_then_cancel() -> None:
    cert = opened(issuer="Unknown")
    cert.request_cancellation(CTX)
    cert.request_cancellation(CTX)  # idempotent
    assert sum(type(e).__name__ == "CancellationRequested" for e in cert.pending_events) == 1
    cert.cancel(CTX, "asked")
    op = cert.require_operation()
    assert (op.status, op.cancellation_requested) == (CANCELLED, True)
    with pytest.raises(Conflict, match="already cancelled"):
        cert.merge_x509(CTX, facts(), source="merge")
    assert cert.current is None


def test_failure_records_code_and_message_and_keeps_current() -> None:
    cert = completed()
    cert.open_operation(CTX, "v2", "corp", "application/x-pkcs12")
    cert.fail(CTX, "ProviderError", "CA down")
    op = cert.require_operation()
    assert (op.status, op.error_code, op.error_message) == (FAILED, "ProviderError", "CA down")
    assert cert.current == "v1"


def test_delete_operation_forgets_unfinished_version() -> None:
    cert = opened(issuer="Unknown")
    cert.cancel(CTX, "x")
    cert.delete_operation(CTX)
    assert cert.operation is None
    assert "v1" not in cert.versions
    with pytest.raises(PendingNotFound):
        cert.require_operation()


def test_deleted_name_is_a_conflict_until_purged() -> None:
    cert = completed()
    cert.delete(CTX)
    with pytest.raises(Conflict) as info:
        cert.open_operation(CTX, "v2", "Self", "application/x-pkcs12")
    assert info.value.inner_code == "ObjectIsDeletedButRecoverable"
    cert.recover(CTX)
    assert cert.exists
    cert.delete(CTX)
    cert.purge(CTX)
    assert not cert.exists and cert.policy is None and cert.generation == 2
    with pytest.raises(BadParameter, match="policy"):
        cert.open_operation(CTX, "v3", "Self", "application/x-pkcs12")


def test_attributes_per_version() -> None:
    cert = completed()
    cert.update_attributes(CTX, None, enabled=False, tags={"env": "prod"})
    v = cert.versions["v1"]
    assert (v.enabled, v.tags) == (False, {"env": "prod"})
    with pytest.raises(NotFound):
        cert.update_attributes(CTX, "nope", enabled=True)


def test_x509_merged_upcasts_from_v1() -> None:
    state = {"version": "v1", "cert_der": "Y2VydA=="}
    Certificate.X509Merged.upcast_v1_v2(state)
    assert state["source"] == "merge"
    assert state["chain_der"] == []
    Certificate.X509Merged.upcast_v2_v3(state)
    assert state["ca_changes"] == {}
    assert Certificate.X509Merged.class_version == 3
