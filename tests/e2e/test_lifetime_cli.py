"""`certledger --now ... lifetime plan` and `worker --once` previews, and `notifications list`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Run, as_json


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_plan_then_renewal_with_the_clock_moved_forward(cli: Run) -> None:
    cli("cert", "create", "web", "--issuer", "Self", "--subject", "CN=web.example", "--wait")
    bundle = as_json(cli("-o", "json", "cert", "show", "web"))
    first = bundle["id"].rsplit("/", 1)[1]
    nbf = datetime.fromtimestamp(bundle["attributes"]["nbf"], UTC)
    exp = datetime.fromtimestamp(bundle["attributes"]["exp"], UTC)
    renew_at = nbf + (exp - nbf) * 0.8

    # Nothing in the next 90 days of a 12-month certificate.
    assert as_json(cli("-o", "json", "lifetime", "plan"))["value"] == []
    # Until its expiry: the renewal at 80%, the 30-day notice, the expiry.
    plan = as_json(cli("-o", "json", "lifetime", "plan", "--until", iso(exp + timedelta(days=1))))
    items = [(p["action"], p["trigger"], p["outcome"]) for p in plan["value"]]
    assert items == [
        ("AutoRenew", "lifetime_percentage=80", "renew"),
        ("NearExpiry", "days_before_expiry=30", "notify"),
        ("Expired", "expired", "notify"),
    ]
    assert plan["value"][0]["when"] == iso(renew_at)
    assert plan["value"][0]["detail"] == "renew through Self"
    assert {p["version"] for p in plan["value"]} == {first}
    table = cli("lifetime", "plan", "--until", iso(exp)).stdout
    assert "WHEN" in table and "renew through Self" in table

    # A preview from a later moment lists the renewal as due now.
    later = iso(renew_at + timedelta(days=1))
    until = iso(renew_at + timedelta(days=1, minutes=1))
    plan = as_json(cli("--now", later, "-o", "json", "lifetime", "plan", "--until", until))
    assert [p["action"] for p in plan["value"]] == ["AutoRenew"]
    assert plan["value"][0]["when"] == later

    # The worker at that moment renews once; running it again changes nothing.
    cli("--now", later, "worker", "--once")
    cli("--now", later, "worker", "--once")
    versions = as_json(cli("-o", "json", "cert", "versions", "web"))["value"]
    assert len(versions) == 2
    second = as_json(cli("-o", "json", "cert", "show", "web"))["id"].rsplit("/", 1)[1]
    assert second != first
    history = as_json(cli("-o", "json", "history", "web"))["value"]
    events = [h["event"] for h in history]
    assert events.count("LifetimeActionTriggered") == 1
    assert events.count("RenewalAttempted") == 1
    # The plan now follows the new version.
    plan = as_json(cli("--now", later, "-o", "json", "lifetime", "plan", "--until", iso(exp)))
    assert {p["version"] for p in plan["value"]} <= {second}
    # No delivery is configured: nothing was raised.
    assert as_json(cli("-o", "json", "notifications", "list"))["value"] == []


def test_bad_moments_are_named(cli: Run) -> None:
    result = cli("--now", "soon", "lifetime", "plan", expect=2)
    assert "CERTLEDGER_NOW / --now" in result.stderr
    result = cli("lifetime", "plan", "--until", "2001-01-01", expect=2)
    assert "--until" in result.stderr and "before now" in result.stderr
