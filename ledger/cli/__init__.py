"""The certledger command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import click

from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict, Forbidden, LedgerError, NotFound
from ledger.domain.policy import PolicyError
from ledger.keys.custody import CustodyError
from ledger.settings import Settings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_FORBIDDEN = 5
EXIT_OPERATION_FAILED = 6


def exit_code_for(exc: Exception) -> int:
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, Forbidden):
        return EXIT_FORBIDDEN
    if isinstance(exc, LedgerError | PolicyError):
        return EXIT_USAGE
    return EXIT_FAILED


@dataclass
class State:
    """Resolved once per invocation; the ledger opens on first use."""

    settings: Settings
    output: str
    _ledger: Any = field(default=None, repr=False)
    _views: Any = field(default=None, repr=False)

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
        """The read side, caught up with every write made so far (read-your-writes)."""
        self.projector.catch_up()
        return self._views[1]

    def ctx(self) -> Ctx:
        return Ctx(self.settings.principal)


class LedgerGroup(click.Group):
    """Turns ledger errors into one line on stderr and a documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LedgerError, PolicyError, CustodyError) as exc:
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
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--database-url",
    envvar="CERTLEDGER_DATABASE_URL",
    help="sqlite:///PATH (default: <home>/ledger.db) or postgresql://USER@HOST:PORT/DB.",
)
@click.option("--principal", envvar="CERTLEDGER_PRINCIPAL", help="Act as this principal.")
@click.version_option(package_name="certledger")
@click.pass_context
def main(
    ctx: click.Context,
    home: str | None,
    output: str,
    database_url: str | None,
    principal: str | None,
) -> None:
    """certledger: a certificate vault where every action is an immutable event.

    \b
    Example:
      certledger cert create web --issuer Self --subject CN=web.example --wait
    """
    try:
        settings = Settings.resolve(home=home, database_url=database_url, principal=principal)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = State(settings=settings, output=output)


def _register() -> None:
    from ledger.cli import access, cert, demo, issuer, keys, serve, token, views, worker

    for module in (cert, keys, issuer, access, worker, views, serve, token, demo):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
