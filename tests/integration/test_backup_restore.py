"""Backups and restores at the ledger's level, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import DomainEventProtocol

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.certificate import Certificate, certificate_id
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Conflict, Forbidden
from ledger.settings import Settings, parse_recoverable_days
from ledger.worker import Worker
from tests.integration.conftest import PolicyFactory, build_policy

Events = Callable[[], list[DomainEventProtocol[Any]]]


def issue(ledger: Ledger, worker: Worker, ctx: Ctx, name: str, make_policy: PolicyFactory) -> None:
    cert = ledger.create_certificate(ctx, name, make_policy())
    worker.drive(name, cert=cert)


def test_backup_purge_restore_appends_to_the_log(
    ledger: Ledger, worker: Worker, ctx: Ctx, make_policy: PolicyFactory, all_events: Events
) -> None:
    issue(ledger, worker, ctx, "kept", make_policy)
    issue(ledger, worker, ctx, "kept", make_policy)
    ledger.update_certificate(ctx, "kept", tags={"a": "b"})
    before = ledger.certificate("kept")
    blob = ledger.backup_certificate(ctx, "kept")
    with pytest.raises(Conflict, match="already exists"):
        ledger.restore_certificate(ctx, blob)
    ledger.delete_certificate(ctx, "kept")
    with pytest.raises(Conflict) as deleted:
        ledger.restore_certificate(ctx, blob)
    assert deleted.value.inner_code == "ObjectIsDeletedButRecoverable"
    ledger.purge_certificate(ctx, "kept")
    ledger.grant(ctx, "restorer", ["restore"])
    history = [(e.originator_id, e.originator_version) for e in all_events()]

    restored = ledger.restore_certificate(Ctx("restorer"), blob)
    assert restored.generation == 2
    assert len(restored.completed_versions()) == 2
    current = restored.versions[restored.current or ""]
    assert current.cert_der == before.versions[before.current or ""].cert_der
    assert current.tags == {"a": "b"}
    assert current.version != before.current  # this stream used that id before the purge
    # The log only grew; the restore is a marker and the replayed events.
    after = all_events()
    assert [(e.originator_id, e.originator_version) for e in after[: len(history)]] == history
    added = after[len(history) :]
    assert type(added[0]) is Certificate.Restored
    assert all(getattr(e, "actor", "") == "restorer" for e in added)
    marker = added[0]
    assert isinstance(marker, Certificate.Restored)
    assert marker.history[0]["actor"] == "admin"
    assert set(marker.renamed) == set(before.versions)
    signature, _ = ledger.sign(ctx, "kept", None, "ES256", b"\x01" * 32)
    assert ledger.verify(ctx, "kept", None, "ES256", b"\x01" * 32, signature)


def test_restore_into_another_ledger_and_refusals(
    settings: Settings,
    ledger: Ledger,
    worker: Worker,
    ctx: Ctx,
    make_policy: PolicyFactory,
    tmp_path: Path,
) -> None:
    issue(ledger, worker, ctx, "moving", make_policy)
    blob = ledger.backup_certificate(ctx, "moving")
    key = (settings.backup_key_file).read_text().strip()
    other_settings = Settings.resolve(
        home=tmp_path / "other", environ={"CERTLEDGER_BACKUP_KEY": key}
    )
    other = open_ledger(other_settings)
    stranger = open_ledger(Settings.resolve(home=tmp_path / "stranger", environ={}))
    try:
        moved = other.restore_certificate(ctx, blob)
        original = ledger.certificate("moving")
        assert moved.current == original.current
        value, _ = other.secret_value(ctx, "moving")
        assert value
        with pytest.raises(BadParameter, match="another backup key"):
            stranger.restore_certificate(ctx, blob)
        tampered = bytearray(blob)
        tampered[-1] ^= 0x80
        with pytest.raises(BadParameter, match="altered"):
            other.restore_certificate(ctx, bytes(tampered))
        with pytest.raises(BadParameter, match="not a certledger"):
            other.restore_certificate(ctx, b"not a backup")
    finally:
        other.close()
        stranger.close()


def test_restore_needs_the_restore_permission(
    ledger: Ledger, worker: Worker, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    issue(ledger, worker, ctx, "guarded", make_policy)
    blob = ledger.backup_certificate(ctx, "guarded")
    with pytest.raises(Forbidden, match="restore"):
        ledger.restore_certificate(Ctx("mallory"), blob)
    with pytest.raises(Forbidden, match="backup"):
        ledger.backup_certificate(Ctx("mallory"), "guarded")


def test_retention_is_a_setting(settings: Settings) -> None:
    short = open_ledger(dataclasses.replace(settings, recoverable_days=7))
    try:
        ctx = Ctx("admin")
        cert = short.create_certificate(ctx, "brief", build_policy())
        Worker(short).drive("brief", cert=cert)
        short.delete_certificate(ctx, "brief")
        events = list(short.events.get(certificate_id("brief")))
        assert events[-1].recoverable_days == 7  # type: ignore[attr-defined]
    finally:
        short.close()
    assert parse_recoverable_days("30") == 30
    for bad in ("6", "91", "soon"):
        with pytest.raises(ValueError, match="CERTLEDGER_RECOVERABLE_DAYS"):
            parse_recoverable_days(bad)
