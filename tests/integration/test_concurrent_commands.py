"""Commands that lose a race with another writer of the same certificate run again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.application import RACE_ATTEMPTS, Ledger
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.domain.errors import ConcurrentChange
from ledger.settings import Settings
from tests.integration.conftest import PolicyFactory

CTX = Ctx("admin")


@pytest.fixture
def rival(settings: Settings) -> Iterator[Ledger]:
    """Another application on the same database (as another API or worker process)."""
    other = open_ledger(settings)
    yield other
    other.close()


def losing_races(
    ledger: Ledger,
    rival: Ledger,
    make_policy: PolicyFactory,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    times: int,
) -> list[int]:
    """A pending certificate `name` whose first `times` saves through `ledger` find that
    the rival changed its policy first; the saves tried are counted in the list returned."""
    ledger.create_certificate(CTX, name, make_policy(issuer="Unknown", validity_months=12))
    months = iter(range(1, 10))
    original = ledger.commit
    calls: list[int] = []

    def commit(*aggregates: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            rival.update_policy(CTX, name, {"x509_props": {"validity_months": next(months)}})
        original(*aggregates, **kwargs)

    monkeypatch.setattr(ledger, "commit", commit)
    return calls


def test_a_command_that_lost_a_race_runs_again_on_the_new_state(
    ledger: Ledger, rival: Ledger, make_policy: PolicyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = losing_races(ledger, rival, make_policy, monkeypatch, "pending", times=2)
    ledger.cancel_operation(CTX, "pending")
    assert len(calls) == 3  # two lost races, then saved
    cert = ledger.certificate("pending")
    assert cert.require_operation().cancellation_requested
    assert ledger.policy_of(cert).x509_props.validity_months == 2  # the rival's last change kept


def test_a_command_that_keeps_losing_gives_up_with_a_conflict(
    ledger: Ledger, rival: Ledger, make_policy: PolicyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = losing_races(ledger, rival, make_policy, monkeypatch, "busy", times=RACE_ATTEMPTS)
    with pytest.raises(ConcurrentChange, match="certificate changed concurrently") as raised:
        ledger.delete_operation(CTX, "busy")
    assert raised.value.code == "Conflict"
    assert len(calls) == RACE_ATTEMPTS
    assert ledger.certificate("busy").require_operation().in_progress  # nothing half done
