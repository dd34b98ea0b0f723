"""The certledger command line."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict, Forbidden, LedgerError, NotFound
from ledger.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_FORBIDDEN = 5
EXIT_OPERATION_FAILED = 6
EXIT_DRIFT = 7


# Error classes from modules a command may never import (checked only once loaded).
LAZY_ERRORS = (("ledger.domain.policy", "PolicyError"), ("ledger.keys.custody", "CustodyError"))


def _lazy_error(exc: Exception) -> str | None:
    for module_name, class_name in LAZY_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return class_name
    return None


def exit_code_for(exc: Exception) -> int:
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, Forbidden):
        return EXIT_FORBIDDEN
    if isinstance(exc, LedgerError) or _lazy_error(exc) == "PolicyError":
        return EXIT_USAGE
    return EXIT_FAILED


@dataclass
class State:
    """Resolved once per invocation; the ledger opens on first use."""

    settings: Settings
    output: str
    _ledger: Any = field(default=None, repr=False)
    _views: Any = field(default=None, repr=False)
    _read: Any = field(default=None, repr=False)

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from ledger.bootstrap import open_ledger

            fresh = not self.settings.master_key_file.exists() and not (
                self.settings.master_key_b64
            )
            self._ledger = open_ledger(self.settings)
            if fresh:
                click.echo(f"certledger: new ledger at {self.settings.home}", err=True)
        return self._ledger

    @property
    def projector(self) -> Any:
        if self._views is None:
            from ledger.bootstrap import open_views

            self._views = open_views(self.ledger)
        return self._views[0]

    @property
    def queries(self) -> Any:
        """The read side, caught up with every write made so far (read-your-writes).

        When the views are current this needs only the database: the ledger itself
        (and its heavier imports) opens only when there are events to catch up.
        """
        from projections.queries import Queries

        if self._read is None:
            self._read = Queries(self.settings.database.connect(), self.settings.vault_url)
        if not views_current(self._read.db):
            self.projector.catch_up()
        return self._read

    def authorize_read(self, permission: str, target: str) -> None:
        """Check a read permission on the access view; a denial goes through the ledger."""
        rows = self.queries.db.execute(
            "SELECT 1 FROM v_access WHERE principal = ? AND permission = ?",
            [self.settings.principal, permission],
        )
        if not rows:
            self.ledger.authorize(self.ctx(), permission, target)

    def history(self) -> Any:
        from ledger.history import History

        return History(self.ledger, self.projector.db)

    def queries_at(self, name: str, at: Any) -> Any:
        """The read side now, or the certificate as it stood at `at` (rebuilt from its events)."""
        if at.is_now:
            return self.queries
        return self.history().views_at(name, at)

    def ctx(self) -> Ctx:
        return Ctx(self.settings.principal)


def views_current(db: Any) -> bool:
    """True when every view has applied the whole log."""
    from ledger.database import log_head

    try:
        rows = db.execute("SELECT MIN(position), COUNT(*) FROM v_tracking")
    except Exception:  # no views yet
        return False
    position, count = rows[0]
    return bool(count) and int(position or 0) >= log_head(db)


# Commands load on first use, so that `certledger cert show` imports only what it needs.
LAZY_COMMANDS = {
    "cert": "ledger.cli.cert:cert",
    "key": "ledger.cli.keys:key",
    "secret": "ledger.cli.keys:secret",
    "issuer": "ledger.cli.issuer:issuer",
    "contacts": "ledger.cli.issuer:contacts",
    "access": "ledger.cli.access:access",
    "history": "ledger.cli.history:history",
    "audit": "ledger.cli.audit:audit",
    "replay": "ledger.cli.replay:replay",
    "report": "ledger.cli.report:report",
    "worker": "ledger.cli.worker:worker",
    "projections": "ledger.cli.views:projections",
    "completion": "ledger.cli.views:completion",
    "demo": "ledger.cli.demo:demo",
    "serve": "ledger.cli.serve:serve",
    "token": "ledger.cli.token:token",
    "lifetime": "ledger.cli.lifetime:lifetime",
    "notifications": "ledger.cli.lifetime:notifications",
}


class LedgerGroup(click.Group):
    """Loads commands lazily; turns ledger errors into one line on stderr and an exit status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not isinstance(exc, LedgerError) and _lazy_error(exc) is None:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exit_code_for(exc))


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="CERTLEDGER_HOME",
    help="Ledger home (default $XDG_DATA_HOME/certledger or ~/.local/share/certledger).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people; json (Key Vault's shapes) or csv for scripts.",
)
@click.option(
    "--database-url",
    envvar="CERTLEDGER_DATABASE_URL",
    help="sqlite:///PATH (default: <home>/ledger.db) or postgresql://USER@HOST:PORT/DB.",
)
@click.option("--principal", envvar="CERTLEDGER_PRINCIPAL", help="Act as this principal.")
@click.option(
    "--now",
    envvar="CERTLEDGER_NOW",
    metavar="TIME",
    help="Run the ledger's clock from TIME (ISO 8601): previews and tests.",
)
@click.version_option(package_name="certledger")
@click.pass_context
def main(
    ctx: click.Context,
    home: str | None,
    output: str,
    database_url: str | None,
    principal: str | None,
    now: str | None,
) -> None:
    """certledger: a certificate vault where every action is an immutable event.

    \b
    Example:
      certledger cert create web --issuer Self --subject CN=web.example --wait
    """
    try:
        settings = Settings.resolve(
            home=home, database_url=database_url, principal=principal, now=now
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = State(settings=settings, output=output)
