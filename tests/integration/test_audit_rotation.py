"""Rotating the audit log key, on SQLite and PostgreSQL: old checkpoints keep verifying."""

from __future__ import annotations

import pytest

from ledger.application import Ledger
from ledger.audit.note import NoteError, open_checkpoint
from ledger.audit.verify_bundle import Refused, verify
from ledger.bootstrap import open_ledger
from ledger.domain.audit_log import AUDIT_LOG_ID, AuditLog
from ledger.domain.context import Ctx
from ledger.domain.errors import Forbidden
from ledger.settings import Settings
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory


def create(ledger: Ledger, make_policy: PolicyFactory, name: str) -> None:
    ledger.create_certificate(Ctx("admin"), name, make_policy())
    Worker(ledger).drive(name)


def test_checkpoints_after_a_rotation_are_signed_by_the_new_key(
    ledger: Ledger, make_policy: PolicyFactory, settings: Settings, clock: Clock
) -> None:
    create(ledger, make_policy, "alpha")
    before = ledger.audit.checkpoint()
    old = ledger.audit.verifier_key()

    retired, new, transition = ledger.audit.rotate_key(Ctx(settings.administrator))
    assert retired == old and new != old and new.name == old.name
    assert ledger.audit.verifier_key() == new
    assert ledger.audit.verifier_keys() == [new, old]
    # The rotation is an event of the log's stream, and a leaf of the tree.
    events = ledger.audit.store.events_of_stream(str(AUDIT_LOG_ID))
    assert [e.version for e in events] == [1, 2]
    assert events[1].topic.endswith("AuditLog.LogKeyRotated")
    log = ledger._load(AUDIT_LOG_ID, AuditLog)
    assert log is not None and log.retired_keys == [old.encode()]
    assert ledger.custody.signer(log.key_id) is not None
    # The first checkpoint after it covers it, signed by both keys.
    assert transition.size == ledger.audit.store.size() > before.size
    assert open_checkpoint(transition.note, [old]).size == transition.size
    assert open_checkpoint(transition.note, [new]).size == transition.size

    create(ledger, make_policy, "beta")
    later = ledger.audit.checkpoint()
    assert open_checkpoint(later.note, [new]).size == later.size
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_checkpoint(later.note, [old])
    # The old key's last checkpoint covers everything before the rotation.
    assert open_checkpoint(before.note, [old]).size == before.size

    report = ledger.audit.verify()
    assert report.ok, report.problems
    assert {before.size, transition.size, later.size} <= {c.size for c in report.checked}
    # An auditor who kept only the old key sees the new key's checkpoints as unverified...
    only_old = ledger.audit.verify(key=old)
    assert not only_old.ok
    assert any(f"size {later.size}" in p.message for p in only_old.problems)
    assert all(f"size {transition.size}:" not in p.message for p in only_old.problems)
    # ...and with both keys, everything verifies, including the checkpoint kept before.
    assert ledger.audit.verify(keys=[old, new], against=before.note).ok

    # Proofs from a checkpoint of the old key to the new key's latest.
    bundle = ledger.audit.consistency_evidence(before.note)
    assert bundle["retired_keys"] == [old.encode()]
    assert verify(bundle, [old, new])[0].size == later.size
    assert verify(bundle)[0].size == later.size  # the bundle's own keys: current and retired
    with pytest.raises((Refused, NoteError)):
        verify(bundle, new)  # the earlier checkpoint needs the old key
    proved = ledger.audit.certificate_evidence("alpha", since=before.note)
    assert verify(proved, [new, old])[0].size == later.size

    # After a restart the new key, from its custody row, keeps signing.
    ledger.close()
    again = open_ledger(settings, clock=clock)
    try:
        create(again, make_policy, "gamma")
        after = again.audit.checkpoint()
        assert open_checkpoint(after.note, [new]).size == after.size
        assert again.audit.verifier_keys() == [new, old]
        assert again.audit.verify().ok
    finally:
        again.close()


def test_only_an_administrator_rotates_the_key(ledger: Ledger) -> None:
    key = ledger.audit.verifier_key()
    with pytest.raises(Forbidden):
        ledger.audit.rotate_key(Ctx("mallory"))
    assert ledger.audit.verifier_key() == key


def test_two_rotations_keep_every_key(ledger: Ledger, settings: Settings) -> None:
    admin = Ctx(settings.administrator)
    first = ledger.audit.checkpoint()
    k0 = ledger.audit.verifier_key()
    _, k1, second = ledger.audit.rotate_key(admin)
    _, k2, third = ledger.audit.rotate_key(admin)
    assert ledger.audit.verifier_keys() == [k2, k1, k0]
    assert open_checkpoint(third.note, [k1]).size == third.size  # cosigned by the retiring key
    report = ledger.audit.verify()
    assert report.ok, report.problems
    assert [c.size for c in report.checked] == [first.size, second.size, third.size]
