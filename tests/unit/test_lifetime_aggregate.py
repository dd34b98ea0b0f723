"""The Certificate aggregate's lifetime rules: each trigger once, renewal attempts in order."""

from __future__ import annotations

from copy import deepcopy
from datetime import timedelta

import pytest

from ledger.domain.errors import Conflict, NotFound
from tests.unit.test_certificate_aggregate import CTX, NOW, completed


def test_a_trigger_fires_once_per_version() -> None:
    cert = completed()
    cert.trigger_lifetime_action(
        CTX, "v1", action="NearExpiry", trigger="days_before_expiry=30", due=NOW, outcome="notify"
    )
    assert cert.versions["v1"].fired == ["NearExpiry:days_before_expiry=30"]
    assert cert.versions["v1"].renewal is None
    with pytest.raises(Conflict, match="already fired"):
        cert.trigger_lifetime_action(
            CTX,
            "v1",
            action="NearExpiry",
            trigger="days_before_expiry=30",
            due=NOW,
            outcome="notify",
        )
    with pytest.raises(NotFound):
        cert.trigger_lifetime_action(
            CTX, "v9", action="Expired", trigger="expired", due=NOW, outcome="notify"
        )


def test_renewal_attempts_follow_the_trigger_and_failures_close_them() -> None:
    cert = completed()
    with pytest.raises(Conflict, match="not being renewed"):
        cert.attempt_renewal(CTX, "v1", "v2", "Self")
    cert.trigger_lifetime_action(
        CTX, "v1", action="AutoRenew", trigger="lifetime_percentage=80", due=NOW, outcome="renew"
    )
    cert.attempt_renewal(CTX, "v1", "v2", "Self")
    with pytest.raises(Conflict, match="in progress"):
        cert.attempt_renewal(CTX, "v1", "v3", "Self")
    retry = NOW + timedelta(hours=1)
    cert.fail_renewal(CTX, "v1", code="ProviderError", message="down", retry_at=retry)
    renewal = cert.versions["v1"].renewal
    assert renewal is not None
    assert (renewal.attempts, renewal.operation, renewal.retry_at) == (1, None, retry)
    assert (renewal.error_code, renewal.gave_up) == ("ProviderError", False)
    with pytest.raises(Conflict, match="no renewal attempt"):
        cert.fail_renewal(CTX, "v1", code="X", message="y", retry_at=None)
    cert.attempt_renewal(CTX, "v1", "v3", "Self")
    cert.fail_renewal(CTX, "v1", code="ProviderError", message="down", retry_at=None)
    assert cert.versions["v1"].renewal is not None
    assert cert.versions["v1"].renewal.gave_up and cert.versions["v1"].renewal.attempts == 2
    # Copies made for the cache do not share the lifetime state.
    clone = deepcopy(cert)
    clone.versions["v1"].fired.append("x")
    assert "x" not in cert.versions["v1"].fired
    assert clone.versions["v1"].renewal is not cert.versions["v1"].renewal
