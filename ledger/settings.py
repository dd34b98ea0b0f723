"""One settings object, resolved once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ledger.database import DatabaseUrl

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


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    principal: str
    administrator: str
    vault_url: str
    master_key_b64: str | None
    recoverable_days: int = MAX_RECOVERABLE_DAYS
    backup_key_b64: str | None = None
    token_key_b64: str | None = None

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
    ) -> Settings:
        env = os.environ if environ is None else environ
        home_path = Path(home).expanduser() if home else default_home(env)
        url = database_url or env.get("CERTLEDGER_DATABASE_URL") or ""
        if not url:
            url = f"sqlite:///{home_path / 'ledger.db'}"
        DatabaseUrl.parse(url)  # refuse a bad URL at start-up
        return cls(
            home=home_path,
            database_url=url,
            principal=principal or env.get("CERTLEDGER_PRINCIPAL") or DEFAULT_PRINCIPAL,
            administrator=env.get("CERTLEDGER_ADMIN") or DEFAULT_PRINCIPAL,
            vault_url=(env.get("CERTLEDGER_VAULT_URL") or DEFAULT_VAULT_URL).rstrip("/"),
            master_key_b64=env.get("CERTLEDGER_MASTER_KEY") or None,
            recoverable_days=parse_recoverable_days(env.get("CERTLEDGER_RECOVERABLE_DAYS")),
            backup_key_b64=env.get("CERTLEDGER_BACKUP_KEY") or None,
            token_key_b64=env.get("CERTLEDGER_TOKEN_KEY") or None,
        )
