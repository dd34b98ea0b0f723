"""The lifetime rules: when each trigger falls due and what the scheduler records then."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.clock import clock_from
from ledger.lifetime.rules import (
    NOW,
    ActionSpec,
    CloseRenewal,
    Fire,
    LifetimeFacts,
    RenewalFacts,
    RetryRenewal,
    actions_from_policy,
    attention,
    plan,
    steps_due,
)
from ledger.lifetime.settings import LifetimeSettings, SmtpSettings
from ledger.settings import Settings

NBF = datetime(2026, 1, 1, tzinfo=UTC)
EXP = NBF + timedelta(days=100)
RENEW_80 = ActionSpec("AutoRenew", lifetime_percentage=80)


def facts(**changes: object) -> LifetimeFacts:
    values: dict[str, object] = {
        "name": "web",
        "version": "v1",
        "nbf": NBF,
        "exp": EXP,
        "issuer": "Self",
        "actions": [RENEW_80],
    }
    values.update(changes)
    return LifetimeFacts(**values)  # type: ignore[arg-type]


def at(days: float) -> datetime:
    return NBF + timedelta(days=days)


def test_due_times_of_both_trigger_kinds() -> None:
    assert RENEW_80.due(NBF, EXP) == at(80)
    assert ActionSpec("EmailContacts", days_before_expiry=10).due(NBF, EXP) == at(90)
    assert RENEW_80.key == "AutoRenew:lifetime_percentage=80"


def test_actions_are_read_from_the_stored_policy_document() -> None:
    policy = {
        "lifetime_actions": [
            {"trigger": {"days_before_expiry": 7}, "action": {"action_type": "EmailContacts"}},
            {"trigger": {"lifetime_percentage": 60}, "action": {"action_type": "AutoRenew"}},
        ],
        "issuer": {"name": "Self"},
    }
    assert actions_from_policy(policy) == [
        ActionSpec("EmailContacts", days_before_expiry=7),
        ActionSpec("AutoRenew", lifetime_percentage=60),
    ]
    assert actions_from_policy(None) == []


def test_nothing_is_due_before_its_time_and_each_trigger_once() -> None:
    assert steps_due(facts(), at(79.9), 0) == []
    assert steps_due(facts(), at(80), 0) == [
        Fire("AutoRenew", "lifetime_percentage=80", at(80), "renew")
    ]
    fired = facts(fired={"AutoRenew:lifetime_percentage=80"}, renewal=RenewalFacts())
    assert steps_due(fired, at(85), 0) == []
    # 30 days before expiry, the near-expiry notice; at expiry, the expired notice.
    assert steps_due(fired, at(70), 30) == [
        Fire("NearExpiry", "days_before_expiry=30", at(70), "notify")
    ]
    assert steps_due(fired, at(100), 0) == [Fire("Expired", "expired", EXP, "notify")]


def test_a_renewal_waits_for_an_operation_in_progress() -> None:
    assert steps_due(facts(op_version="user-op"), at(85), 0) == []
    assert attention(facts(op_version="user-op")) == EXP  # only the expired notice
    assert attention(facts()) == at(80)


def test_an_unknown_issuer_only_notifies_and_late_notices_are_skipped() -> None:
    unknown = facts(issuer="Unknown")
    assert steps_due(unknown, at(81), 0) == [
        Fire("AutoRenew", "lifetime_percentage=80", at(80), "notify")
    ]
    late = steps_due(unknown, at(101), 30)
    assert late == [
        Fire("NearExpiry", "days_before_expiry=30", at(70), "skipped"),
        Fire("AutoRenew", "lifetime_percentage=80", at(80), "skipped"),
        Fire("Expired", "expired", EXP, "notify"),
    ]
    # A renewal still renews after expiry (a late worker).
    assert steps_due(facts(), at(101), 0)[0] == Fire(
        "AutoRenew", "lifetime_percentage=80", at(80), "renew"
    )


def test_renewal_attempts_are_closed_then_retried_when_due() -> None:
    fired = {"AutoRenew:lifetime_percentage=80"}
    running = facts(fired=fired, op_version="r1", renewal=RenewalFacts(1, "r1"))
    assert steps_due(running, at(85), 0) == []
    ended = facts(fired=fired, renewal=RenewalFacts(1, "r1"))
    assert steps_due(ended, at(85), 0) == [CloseRenewal("r1", NOW)]
    assert attention(ended) == NOW
    waiting = facts(fired=fired, renewal=RenewalFacts(1, None, retry_at=at(86)))
    assert steps_due(waiting, at(85), 0) == []
    assert attention(waiting) == at(86)
    assert steps_due(waiting, at(86), 0) == [RetryRenewal(2, at(86))]
    gave_up = facts(fired=fired, renewal=RenewalFacts(3, None, None, gave_up=True))
    assert steps_due(gave_up, at(99), 0) == []


def test_the_plan_lists_what_falls_due_in_order() -> None:
    items = plan(facts(), at(10), at(100), 30, 3)
    assert [(p.when, p.action, p.outcome) for p in items] == [
        (at(70), "NearExpiry", "notify"),
        (at(80), "AutoRenew", "renew"),
        (EXP, "Expired", "notify"),
    ]
    assert plan(facts(), at(10), at(60), 30, 3) == []
    overdue = plan(facts(), at(90), at(91), 0, 3)
    assert [(p.when, p.action) for p in overdue] == [(at(90), "AutoRenew")]
    retry = facts(fired={"AutoRenew:lifetime_percentage=80"}, renewal=RenewalFacts(1, None, at(95)))
    [item] = plan(retry, at(90), at(96), 0, 3)
    assert (item.action, item.trigger, item.when) == ("Renewal", "attempt 2 of 3", at(95))


def test_lifetime_settings_from_the_environment(tmp_path: Path) -> None:
    s = LifetimeSettings.from_environ({})
    assert s.near_expiry_days == 30 and not s.delivers
    assert s.renewal_delay(1) == 3600 and s.renewal_delay(10) == 86400
    env = {
        "CERTLEDGER_SMTP_HOST": "mail.example",
        "CERTLEDGER_SMTP_STARTTLS": "yes",
        "CERTLEDGER_SMTP_USERNAME": "u",
        "CERTLEDGER_SMTP_PASSWORD": "pa55word",
        "CERTLEDGER_WEBHOOK_URLS": "https://a.example/x, http://b.example/y",
        "CERTLEDGER_WEBHOOK_SECRET": "k",
        "CERTLEDGER_WEBHOOK_EVENTS": "NearExpiry,Expired",
        "CERTLEDGER_NEAR_EXPIRY_DAYS": "14",
    }
    s = LifetimeSettings.from_environ(env)
    assert s.smtp == SmtpSettings(
        host="mail.example", port=587, starttls=True, username="u", password="pa55word"
    )
    assert "pa55word" not in repr(s.smtp)
    assert s.webhook_urls == ("https://a.example/x", "http://b.example/y")
    assert s.webhook_events == {"NearExpiry", "Expired"}
    assert s.near_expiry_days == 14 and s.delivers
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    s = LifetimeSettings.from_environ(
        {"CERTLEDGER_WEBHOOK_URLS": "http://h/x", "CERTLEDGER_WEBHOOK_SECRET_FILE": str(secret)}
    )
    assert s.webhook_secret == "from-file"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CERTLEDGER_WEBHOOK_URLS": "http://h/x"}, "CERTLEDGER_WEBHOOK_SECRET"),
        ({"CERTLEDGER_WEBHOOK_URLS": "ftp://h/x", "CERTLEDGER_WEBHOOK_SECRET": "k"}, "http(s)"),
        ({"CERTLEDGER_SMTP_PORT": "25"}, "CERTLEDGER_SMTP_HOST is not"),
        ({"CERTLEDGER_SMTP_HOST": "h", "CERTLEDGER_SMTP_USERNAME": "u"}, "go together"),
        ({"CERTLEDGER_SMTP_HOST": "h", "CERTLEDGER_SMTP_STARTTLS": "maybe"}, "true or false"),
        ({"CERTLEDGER_EMAIL_EVENTS": "Sometimes"}, "unknown notification(s) Sometimes"),
        ({"CERTLEDGER_NEAR_EXPIRY_DAYS": "-1"}, "must be at least 0"),
        ({"CERTLEDGER_RENEWAL_MAX_ATTEMPTS": "zero"}, "is not a number"),
    ],
)
def test_bad_lifetime_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LifetimeSettings.from_environ(env)


def test_the_clock_can_start_at_a_given_moment(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path, environ={"CERTLEDGER_NOW": "2030-05-01"})
    assert settings.now == datetime(2030, 5, 1, tzinfo=UTC)
    clock = clock_from(settings.now)
    first = clock()
    assert first - datetime(2030, 5, 1, tzinfo=UTC) < timedelta(seconds=1)
    time.sleep(0.01)
    assert clock() > first  # it runs on
    assert Settings.resolve(home=tmp_path, environ={}, now="2031-01-01T00:00:00Z").now == (
        datetime(2031, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match="CERTLEDGER_NOW"):
        Settings.resolve(home=tmp_path, environ={"CERTLEDGER_NOW": "next tuesday"})
