"""Bearer tokens for the API: HMAC-SHA256 JSON Web Tokens issued by the ledger itself.

A token names a principal (`sub`) and expires (`exp`); it is signed with the
ledger's token key (`<home>/token.key` or CERTLEDGER_TOKEN_KEY). Whoever holds
that key can issue tokens, so it is kept like the master key (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ISSUER = "certledger"
AUDIENCE = "https://vault.azure.net"
MAX_TOKEN_CHARS = 4096
VERIFIED_CACHE = 1024  # tokens kept verified (then forgotten all at once)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenError(Exception):
    """A token is malformed, forged or expired."""


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h`, `7d` (a bare number is seconds)."""
    match = _DURATION_RE.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"duration {text!r}: expected a positive number with s, m, h or d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenError("the token is not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Claims:
    principal: str
    expires: datetime
    token_id: str


class TokenAuthority:
    """Issues and checks the ledger's bearer tokens."""

    def __init__(self, key: bytes, now: Callable[[], datetime] | None = None) -> None:
        if len(key) < 32:
            raise ValueError("the token key must be at least 32 bytes")
        self._key = key
        self._now = now or (lambda: datetime.now(UTC))
        # Tokens whose signature and claims were checked: a client sends the same one on
        # every request. Their expiry is still checked each time.
        self._verified: dict[str, Claims] = {}

    def _sign(self, signing_input: str) -> str:
        return _b64url(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, principal: str, lifetime: timedelta) -> str:
        if not principal or len(principal) > 256:
            raise ValueError("principal: 1 to 256 characters")
        issued = int(self._now().timestamp())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal,
            "iat": issued,
            "exp": issued + int(lifetime.total_seconds()),
            "jti": uuid.uuid4().hex,
        }
        body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{_HEADER}.{body}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def verify(self, token: str) -> Claims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check(token)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = claims
        elif self._now() >= claims.expires:
            raise TokenError("the token has expired")
        return claims

    def _check(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("the token is too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("the token is not a JWT")
        header, body, signature = parts
        if not hmac.compare_digest(self._sign(f"{header}.{body}"), signature):
            raise TokenError("the token's signature is not valid")
        try:
            head: Any = json.loads(_unb64url(header))
            claims: Any = json.loads(_unb64url(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("the token is not valid JSON") from exc
        if not isinstance(head, dict) or head.get("alg") != "HS256":
            raise TokenError("the token's algorithm is not HS256")
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            raise TokenError("the token was not issued by certledger")
        sub, exp = claims.get("sub"), claims.get("exp")
        if not isinstance(sub, str) or not sub or not isinstance(exp, int):
            raise TokenError("the token lacks its subject or expiry")
        expires = datetime.fromtimestamp(exp, UTC)
        if self._now() >= expires:
            raise TokenError("the token has expired")
        return Claims(principal=sub, expires=expires, token_id=str(claims.get("jti", "")))
