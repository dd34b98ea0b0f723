"""Commands that lose a race with another writer of the same certificate run again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


def race_before_commit(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, rival_move: Callable[[], Any], times: int
) -> list[int]:
    """The first `times` saves of `ledger` find that the rival saved first."""
    original = ledger.commit
    calls: list[int] = []

    def commit(*aggregates: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            rival_move()
        original(*aggregates, **kwargs)

    monkeypatch.setattr(ledger, "commit", commit)
    return calls


def test_a_command_that_lost_a_race_runs_again_on_the_new_state(
    ledger: Ledger,
    rival: Ledger,
    make_policy: PolicyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger.create_certificate(CTX, "pending", make_policy(issuer="Unknown", validity_months=12))
    months = iter(range(1, 10))

    def shorten() -> None:
        rival.update_policy(CTX, "pending", {"x509_props": {"validity_months": next(months)}})

    calls = race_before_commit(ledger, monkeypatch, shorten, times=2)
    ledger.cancel_operation(CTX, "pending")
    assert len(calls) == 3  # two lost races, then saved
    cert = ledger.certificate("pending")
    assert cert.require_operation().cancellation_requested
    assert ledger.policy_of(cert).x509_props.validity_months == 2  # the rival's last change kept


def test_a_command_that_keeps_losing_gives_up_with_a_conflict(
    ledger: Ledger,
    rival: Ledger,
    make_policy: PolicyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger.create_certificate(CTX, "busy", make_policy(issuer="Unknown", validity_months=12))
    months = iter(range(1, 10))

    def shorten() -> None:
        rival.update_policy(CTX, "busy", {"x509_props": {"validity_months": next(months)}})

    calls = race_before_commit(ledger, monkeypatch, shorten, times=RACE_ATTEMPTS)
    with pytest.raises(ConcurrentChange, match="certificate changed concurrently") as raised:
        ledger.delete_operation(CTX, "busy")
    assert raised.value.code == "Conflict"
    assert len(calls) == RACE_ATTEMPTS
    assert ledger.certificate("busy").require_operation().in_progress  # nothing half done
