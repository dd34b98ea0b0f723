"""Settings of lifetime actions and notifications, from CERTLEDGER_* variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Short names of the notifications, and their Event Grid types.
EVENT_TYPES = {
    "NearExpiry": "Microsoft.KeyVault.CertificateNearExpiry",
    "Expired": "Microsoft.KeyVault.CertificateExpired",
    "NewVersionCreated": "Microsoft.KeyVault.CertificateNewVersionCreated",
    # Key Vault has no failure event; certledger's own, in the same namespace.
    "OperationFailed": "Microsoft.KeyVault.CertificateOperationFailed",
}
ALL_EVENTS = frozenset(EVENT_TYPES)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={raw!r}: expected true or false")


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """NAME, or the contents of the file named by NAME_FILE."""
    value = env.get(name) or None
    path = env.get(f"{name}_FILE") or None
    if value is not None and path is not None:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            value = Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return value


def _events(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return ALL_EVENTS
    chosen = frozenset(p for p in re.split(r"[\s,]+", raw.strip()) if p)
    unknown = chosen - ALL_EVENTS
    if unknown:
        raise ValueError(
            f"{name}: unknown notification(s) {', '.join(sorted(unknown))}; "
            f"expected some of {', '.join(sorted(ALL_EVENTS))}"
        )
    return chosen


def _file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"{name}: no such file {path}")
    return path


@dataclass(frozen=True)
class SmtpSettings:
    """Where notification emails go out (to the certificate contacts)."""

    host: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "certledger@localhost"
    ca_file: Path | None = None  # trust for STARTTLS (default: the system's)
    timeout: float = 30.0

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        host = env.get("CERTLEDGER_SMTP_HOST") or None
        if host is None:
            for name in ("PORT", "USERNAME", "PASSWORD", "STARTTLS"):
                if env.get(f"CERTLEDGER_SMTP_{name}"):
                    raise ValueError(
                        f"CERTLEDGER_SMTP_{name} is set but CERTLEDGER_SMTP_HOST is not"
                    )
            return None
        starttls = _flag(env, "CERTLEDGER_SMTP_STARTTLS")
        port = int(_number(env, "CERTLEDGER_SMTP_PORT", 587 if starttls else 25, 1))
        if port > 65535:
            raise ValueError(f"CERTLEDGER_SMTP_PORT={port} is not a port")
        username = env.get("CERTLEDGER_SMTP_USERNAME") or None
        password = _secret(env, "CERTLEDGER_SMTP_PASSWORD")
        if (username is None) != (password is None):
            raise ValueError("CERTLEDGER_SMTP_USERNAME and CERTLEDGER_SMTP_PASSWORD go together")
        sender = env.get("CERTLEDGER_SMTP_FROM") or "certledger@localhost"
        if "@" not in sender:
            raise ValueError(f"CERTLEDGER_SMTP_FROM={sender!r} is not an email address")
        return cls(
            host=host,
            port=port,
            starttls=starttls,
            username=username,
            password=password,
            sender=sender,
            ca_file=_file(env, "CERTLEDGER_SMTP_CA_FILE"),
            timeout=_number(env, "CERTLEDGER_SMTP_TIMEOUT", 30.0, 0.1),
        )


def _webhook_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("CERTLEDGER_WEBHOOK_URLS") or ""
    urls = tuple(u for u in re.split(r"[\s,]+", raw.strip()) if u)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CERTLEDGER_WEBHOOK_URLS: {url!r} is not an http(s) URL")
    return urls


@dataclass(frozen=True)
class LifetimeSettings:
    """Near-expiry notice, renewal retries, and where notifications are delivered."""

    near_expiry_days: int = 30  # 0: no near-expiry notice
    renewal_attempts: int = 3
    renewal_backoff: float = 3600.0
    renewal_max_backoff: float = 86400.0
    smtp: SmtpSettings | None = None
    email_events: frozenset[str] = ALL_EVENTS
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_events: frozenset[str] = ALL_EVENTS
    webhook_ca_file: Path | None = None
    webhook_timeout: float = 10.0
    delivery_attempts: int = 10
    delivery_backoff: float = 30.0
    delivery_max_backoff: float = 3600.0

    def __post_init__(self) -> None:
        if self.near_expiry_days < 0:
            raise ValueError("the near-expiry notice's days must not be negative")
        if self.renewal_attempts < 1 or self.delivery_attempts < 1:
            raise ValueError("renewal and delivery attempts must be at least 1")
        if self.webhook_urls and not self.webhook_secret:
            raise ValueError(
                "CERTLEDGER_WEBHOOK_SECRET (or _FILE) is required with CERTLEDGER_WEBHOOK_URLS: "
                "every webhook is signed"
            )

    def renewal_delay(self, attempt: int) -> float:
        """Seconds before renewal attempt `attempt + 1`: doubling, capped."""
        return float(min(self.renewal_max_backoff, self.renewal_backoff * 2 ** (attempt - 1)))

    def delivery_delay(self, attempt: int) -> float:
        return float(min(self.delivery_max_backoff, self.delivery_backoff * 2 ** (attempt - 1)))

    @property
    def delivers(self) -> bool:
        """True when notifications have somewhere to go."""
        return self.smtp is not None or bool(self.webhook_urls)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> LifetimeSettings:
        return cls(
            near_expiry_days=int(_number(env, "CERTLEDGER_NEAR_EXPIRY_DAYS", 30)),
            renewal_attempts=int(_number(env, "CERTLEDGER_RENEWAL_MAX_ATTEMPTS", 3, 1)),
            renewal_backoff=_number(env, "CERTLEDGER_RENEWAL_BACKOFF", 3600.0),
            renewal_max_backoff=_number(env, "CERTLEDGER_RENEWAL_MAX_BACKOFF", 86400.0),
            smtp=SmtpSettings.from_environ(env),
            email_events=_events(env, "CERTLEDGER_EMAIL_EVENTS"),
            webhook_urls=_webhook_urls(env),
            webhook_secret=_secret(env, "CERTLEDGER_WEBHOOK_SECRET"),
            webhook_events=_events(env, "CERTLEDGER_WEBHOOK_EVENTS"),
            webhook_ca_file=_file(env, "CERTLEDGER_WEBHOOK_CA_FILE"),
            webhook_timeout=_number(env, "CERTLEDGER_WEBHOOK_TIMEOUT", 10.0, 0.1),
            delivery_attempts=int(_number(env, "CERTLEDGER_DELIVERY_MAX_ATTEMPTS", 10, 1)),
            delivery_backoff=_number(env, "CERTLEDGER_DELIVERY_BACKOFF", 30.0),
            delivery_max_backoff=_number(env, "CERTLEDGER_DELIVERY_MAX_BACKOFF", 3600.0),
        )
