"""Bearer tokens: HMAC-SHA256 JWTs with a subject and an expiry."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from ledger.tokens import TokenAuthority, TokenError, parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_issue_and_verify() -> None:
    clock = Clock()
    authority = TokenAuthority(os.urandom(32), clock)
    token = authority.issue("app1", timedelta(hours=1))
    claims = authority.verify(token)
    assert claims.principal == "app1"
    assert claims.expires == clock.now + timedelta(hours=1)
    clock.now += timedelta(hours=1)
    with pytest.raises(TokenError, match="expired"):
        authority.verify(token)


def test_another_key_or_a_changed_claim_is_refused() -> None:
    authority = TokenAuthority(os.urandom(32))
    token = authority.issue("app1", timedelta(minutes=5))
    with pytest.raises(TokenError, match="signature"):
        TokenAuthority(os.urandom(32)).verify(token)
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        authority.verify(f"{head}.{forged}.{sig}")


def test_unsigned_and_malformed_tokens_are_refused() -> None:
    authority = TokenAuthority(os.urandom(32))
    none_head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = authority.issue("x", timedelta(minutes=1)).split(".")[1]
    for bad in ("", "a.b", f"{none_head}.{body}.", "x" * 5000, "a.b.c.d"):
        with pytest.raises(TokenError):
            authority.verify(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("7d", 604800), ("15", 15)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0h", "-1h", "1w", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenAuthority(b"short")


def test_verified_tokens_are_remembered_but_still_expire() -> None:
    clock = Clock()
    authority = TokenAuthority(os.urandom(32), clock)
    tokens = [authority.issue(f"app{i}", timedelta(minutes=i + 1)) for i in range(1100)]
    for i, token in enumerate(tokens):  # more than the cache holds
        assert authority.verify(token).principal == f"app{i}"
    assert authority.verify(tokens[-1]).principal == "app1099"  # from the cache
    head, body, _ = tokens[-1].split(".")
    with pytest.raises(TokenError, match="signature"):
        authority.verify(f"{head}.{body}.{'A' * 43}")  # a forged signature is never remembered
    clock.now += timedelta(minutes=2)
    with pytest.raises(TokenError, match="expired"):
        authority.verify(tokens[0])
    assert authority.verify(tokens[-1]).principal == "app1099"
