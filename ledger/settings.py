"""One settings object, resolved once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PRINCIPAL = "admin"
DEFAULT_VAULT_URL = "https://localhost:8443"


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
    audit_origin: str | None = None

    @property
    def master_key_file(self) -> Path:
        return self.home / "master.key"

    @property
    def sqlite_path(self) -> Path:
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError(f"not an SQLite database URL: {self.database_url}")
        return Path(self.database_url.removeprefix("sqlite:///"))

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
        if not url.startswith("sqlite:///"):
            raise ValueError(f"unsupported database URL {url!r}: expected sqlite:///PATH")
        return cls(
            home=home_path,
            database_url=url,
            principal=principal or env.get("CERTLEDGER_PRINCIPAL") or DEFAULT_PRINCIPAL,
            administrator=env.get("CERTLEDGER_ADMIN") or DEFAULT_PRINCIPAL,
            vault_url=(env.get("CERTLEDGER_VAULT_URL") or DEFAULT_VAULT_URL).rstrip("/"),
            master_key_b64=env.get("CERTLEDGER_MASTER_KEY") or None,
            audit_origin=env.get("CERTLEDGER_AUDIT_ORIGIN") or None,
        )
