"""Permissions: denials are refused and recorded; grants and revocations take effect."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.access import ACCESS_ID
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Forbidden
from ledger.worker import Worker
from tests.integration.conftest import PolicyFactory


def access_events(ledger: Ledger) -> list[Any]:
    return [ledger.mapper.to_domain_event(s) for s in ledger.recorder.select_events(ACCESS_ID)]


def denials(ledger: Ledger) -> list[Any]:
    return [e for e in access_events(ledger) if type(e).__name__ == "AccessDenied"]


def test_create_needs_the_create_permission(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    alice = Ctx("alice")

    with pytest.raises(Forbidden, match="'alice' lacks the certificates/create permission"):
        ledger.create_certificate(alice, "web", make_policy())

    assert ledger.find_certificate("web") is None
    [denied] = denials(ledger)
    assert denied.actor == "alice"
    assert denied.permission == "create"
    assert denied.target == "certificates/web"
    assert denied.request_id == alice.request_id

    ledger.grant(ctx, "alice", ["create"])
    ledger.create_certificate(alice, "web", make_policy())
    cert = worker.drive("web")
    assert cert.operation is not None and cert.operation.status == "completed"
    assert cert.versions[cert.operation.version].actor == "alice"
    assert len(denials(ledger)) == 1

    # "create" does not include "get".
    with pytest.raises(Forbidden, match="certificates/get"):
        ledger.secret_value(alice, "web")

    ledger.revoke(ctx, "alice", ["create"])
    again = Ctx("alice")
    with pytest.raises(Forbidden, match="certificates/create"):
        ledger.create_certificate(again, "web")
    assert ledger.certificate("web").operation == cert.operation

    recorded = denials(ledger)
    assert [(e.actor, e.permission, e.target) for e in recorded] == [
        ("alice", "create", "certificates/web"),
        ("alice", "get", "certificates/web"),
        ("alice", "create", "certificates/web"),
    ]
    assert recorded[-1].request_id == again.request_id
    names = [type(e).__name__ for e in access_events(ledger)]
    assert names == [
        "Bootstrapped",
        "AccessDenied",
        "PermissionsGranted",
        "AccessDenied",
        "PermissionsRevoked",
        "AccessDenied",
    ]


def test_each_command_checks_its_own_permission(
    ledger: Ledger, ctx: Ctx, worker: Worker, make_policy: PolicyFactory
) -> None:
    ledger.create_certificate(ctx, "web", make_policy())
    worker.drive("web")
    bob = Ctx("bob")
    ledger.grant(ctx, "bob", ["get"])

    assert ledger.secret_value(bob, "web")[1].version == ledger.certificate("web").current
    with pytest.raises(Forbidden, match="certificates/update"):
        ledger.update_certificate(bob, "web", enabled=False)
    with pytest.raises(Forbidden, match="certificates/delete"):
        ledger.delete_certificate(bob, "web")
    with pytest.raises(Forbidden, match="certificates/setissuers"):
        ledger.set_issuer(bob, "corp", provider="LocalCA")
    assert ledger.certificate("web").version_of(None).enabled is True
    assert [(e.permission, e.target) for e in denials(ledger)] == [
        ("update", "certificates/web"),
        ("delete", "certificates/web"),
        ("setissuers", "certificates/issuers/corp"),
    ]


def test_only_an_administrator_changes_grants(ledger: Ledger, ctx: Ctx) -> None:
    mallory = Ctx("mallory")
    ledger.grant(ctx, "mallory", ["get", "list", "create", "update", "delete"])
    before = len(access_events(ledger))

    with pytest.raises(Forbidden, match="may not change access grants"):
        ledger.grant(mallory, "mallory", ["purge"])
    with pytest.raises(Forbidden, match="may not change access grants"):
        ledger.revoke(mallory, "admin", ["create"])

    assert len(access_events(ledger)) == before
    access = ledger.access()
    assert not access.allows("mallory", "purge")
    assert access.allows("admin", "create")


def test_unknown_permissions_are_rejected(ledger: Ledger, ctx: Ctx) -> None:
    with pytest.raises(BadParameter, match="unknown permission"):
        ledger.grant(ctx, "carol", ["create", "launch-missiles"])
    assert not ledger.access().allows("carol", "create")
