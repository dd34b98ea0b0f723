"""One settings object, resolved once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ledger.database import DatabaseUrl
from ledger.lifetime.settings import LifetimeSettings

DEFAULT_PRINCIPAL = "admin"
DEFAULT_VAULT_URL = "https://localhost:8443"
# Key Vault's soft-delete retention: 7 to 90 days, 90 by default.
MIN_RECOVERABLE_DAYS = 7
MAX_RECOVERABLE_DAYS = 90


def parse_recoverable_days(text: str | None) -> int:
    if not text:
        return MAX_RECOVERABLE_DAYS
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"CERTLEDGER_RECOVERABLE_DAYS {text!r} is not a whole number") from None
    if not MIN_RECOVERABLE_DAYS <= days <= MAX_RECOVERABLE_DAYS:
        raise ValueError(
            f"CERTLEDGER_RECOVERABLE_DAYS must be {MIN_RECOVERABLE_DAYS} to "
            f"{MAX_RECOVERABLE_DAYS} days, not {days}"
        )
    return days


def default_home(environ: Mapping[str, str]) -> Path:
    """CERTLEDGER_HOME, else $XDG_DATA_HOME/certledger, else ~/.local/share/certledger."""
    if environ.get("CERTLEDGER_HOME"):
        return Path(environ["CERTLEDGER_HOME"]).expanduser()
    data = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "certledger"


def _pkcs11_settings(env: Mapping[str, str]) -> tuple[Path | None, str | None, str | None]:
    """(module, token label, user PIN) from CERTLEDGER_PKCS11_*; all None when unset."""
    module = env.get("CERTLEDGER_PKCS11_MODULE") or None
    token = env.get("CERTLEDGER_PKCS11_TOKEN") or None
    pin = env.get("CERTLEDGER_PKCS11_PIN") or None
    pin_file = env.get("CERTLEDGER_PKCS11_PIN_FILE") or None
    if module is None:
        if token or pin or pin_file:
            raise ValueError(
                "CERTLEDGER_PKCS11_TOKEN/PIN are set but CERTLEDGER_PKCS11_MODULE is not"
            )
        return None, None, None
    path = Path(module).expanduser()
    if not path.is_file():
        raise ValueError(f"CERTLEDGER_PKCS11_MODULE: no such file {path}")
    if token is None:
        raise ValueError("CERTLEDGER_PKCS11_TOKEN: the label of the token to use is required")
    if pin is not None and pin_file is not None:
        raise ValueError("set CERTLEDGER_PKCS11_PIN or CERTLEDGER_PKCS11_PIN_FILE, not both")
    if pin_file is not None:
        try:
            pin = Path(pin_file).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"CERTLEDGER_PKCS11_PIN_FILE: cannot read {pin_file}: {exc}") from exc
    if not pin:
        raise ValueError(
            "the token's user PIN is required: set CERTLEDGER_PKCS11_PIN or "
            "CERTLEDGER_PKCS11_PIN_FILE"
        )
    return path, token, pin


PAUSE_STEPS: tuple[str, ...] = (
    "key_pair",
    "csr",
    "order",
    "certificate",
    "promoted",
    "cancelled",
    "failed",
)
# Lifetime actions and notification delivery (ledger/lifetime): triggers saved, a
# notification raised, a message handed to its server, its delivery recorded.
PAUSE_STEPS += ("lifetime", "raised", "sent", "delivered")


@dataclass(frozen=True)
class WorkerSettings:
    """How the worker retries a CA's errors, and how long a worker's lease lasts.

    `pause_at` names a step after whose save the process stops and waits (for crash tests).
    """

    max_attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    lease_seconds: float = 60.0
    pause_at: str | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("the worker's max attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("the worker's backoff must not be negative")
        if self.lease_seconds <= 0:
            raise ValueError("the worker's lease must be positive")
        if self.pause_at is not None and self.pause_at not in PAUSE_STEPS:
            raise ValueError(
                f"unknown pause step {self.pause_at!r}; expected one of {', '.join(PAUSE_STEPS)}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1, 2, ...): doubling, capped."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1)))

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> WorkerSettings:
        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        return cls(
            max_attempts=int(number("CERTLEDGER_WORKER_MAX_ATTEMPTS", 5)),
            backoff=number("CERTLEDGER_WORKER_BACKOFF", 1.0),
            max_backoff=number("CERTLEDGER_WORKER_MAX_BACKOFF", 60.0),
            lease_seconds=number("CERTLEDGER_WORKER_LEASE", 60.0),
            pause_at=env.get("CERTLEDGER_WORKER_PAUSE_AT") or None,
        )


def parse_provider_list(text: str) -> dict[str, str]:
    """`Name=module:attr;Other=module:attr` -> {name: "module:attr"}."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or ":" not in target:
            raise ValueError(f"CERTLEDGER_PROVIDERS: {item!r} is not Name=module:attribute")
        found[name.strip()] = target.strip()
    return found


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    principal: str
    administrator: str
    vault_url: str
    master_key_b64: str | None
    # A PKCS#11 token for RSA-HSM / EC-HSM keys; None: such key types are refused.
    pkcs11_module: Path | None = None
    pkcs11_token: str | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    worker: WorkerSettings = field(default_factory=lambda: WorkerSettings())
    # Providers named in CERTLEDGER_PROVIDERS ("Name=module:attr;..."), beside entry points.
    extra_providers: dict[str, str] = field(default_factory=dict)
    audit_origin: str | None = None
    recoverable_days: int = MAX_RECOVERABLE_DAYS
    backup_key_b64: str | None = None
    token_key_b64: str | None = None
    lifetime: LifetimeSettings = field(default_factory=lambda: LifetimeSettings())
    # CERTLEDGER_NOW / --now: the ledger's clock starts here (and runs on); None: real time.
    now: datetime | None = None

    @property
    def master_key_file(self) -> Path:
        return self.home / "master.key"

    @property
    def backup_key_file(self) -> Path:
        """The key that encrypts certificate backups (shared by ledgers that exchange them)."""
        return self.home / "backup.key"

    @property
    def token_key_file(self) -> Path:
        """The key that signs the API's bearer tokens."""
        return self.home / "token.key"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def database(self) -> DatabaseUrl:
        return DatabaseUrl.parse(self.database_url)

    @classmethod
    def resolve(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        principal: str | None = None,
        environ: Mapping[str, str] | None = None,
        now: str | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        home_path = Path(home).expanduser() if home else default_home(env)
        url = database_url or env.get("CERTLEDGER_DATABASE_URL") or ""
        if not url:
            url = f"sqlite:///{home_path / 'ledger.db'}"
        DatabaseUrl.parse(url)  # refuse a bad URL at start-up
        module, token, pin = _pkcs11_settings(env)
        start = now or env.get("CERTLEDGER_NOW") or None
        return cls(
            home=home_path,
            database_url=url,
            principal=principal or env.get("CERTLEDGER_PRINCIPAL") or DEFAULT_PRINCIPAL,
            administrator=env.get("CERTLEDGER_ADMIN") or DEFAULT_PRINCIPAL,
            vault_url=(env.get("CERTLEDGER_VAULT_URL") or DEFAULT_VAULT_URL).rstrip("/"),
            master_key_b64=env.get("CERTLEDGER_MASTER_KEY") or None,
            pkcs11_module=module,
            pkcs11_token=token,
            pkcs11_pin=pin,
            worker=WorkerSettings.from_environ(env),
            extra_providers=parse_provider_list(env.get("CERTLEDGER_PROVIDERS", "")),
            audit_origin=env.get("CERTLEDGER_AUDIT_ORIGIN") or None,
            recoverable_days=parse_recoverable_days(env.get("CERTLEDGER_RECOVERABLE_DAYS")),
            backup_key_b64=env.get("CERTLEDGER_BACKUP_KEY") or None,
            token_key_b64=env.get("CERTLEDGER_TOKEN_KEY") or None,
            lifetime=LifetimeSettings.from_environ(env),
            now=parse_now(start) if start else None,
        )


def parse_now(text: str) -> datetime:
    """CERTLEDGER_NOW / --now: ISO 8601, `Z` allowed; a date alone is its midnight UTC."""
    from ledger.moments import parse_moment

    try:
        return parse_moment(text)
    except Exception as exc:
        raise ValueError(f"CERTLEDGER_NOW / --now: {exc}") from None
