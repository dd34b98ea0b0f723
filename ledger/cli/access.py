"""`certledger access ...`: grant and revoke certificate permissions."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.cli.output import emit_rows
from ledger.domain.access import PERMISSIONS


@click.group()
def access() -> None:
    """Who may do what (Key Vault's certificate permissions)."""


@access.command("grant")
@click.argument("principal")
@click.argument("permissions", nargs=-1, required=True)
@pass_state
def grant(state: State, principal: str, permissions: tuple[str, ...]) -> None:
    """Grant permissions to a principal.

    \b
    Example:
      certledger access grant alice get list create
    """
    state.ledger.grant(state.ctx(), principal, list(permissions))
    _show(state)


@access.command("revoke")
@click.argument("principal")
@click.argument("permissions", nargs=-1, required=True)
@pass_state
def revoke(state: State, principal: str, permissions: tuple[str, ...]) -> None:
    """Revoke permissions from a principal.

    \b
    Example:
      certledger access revoke alice create
    """
    state.ledger.revoke(state.ctx(), principal, list(permissions))
    _show(state)


@access.command("show")
@pass_state
def show(state: State) -> None:
    """List every principal and its permissions.

    \b
    Example:
      certledger access show
    """
    _show(state)


def _show(state: State) -> None:
    grants = state.queries.grants()
    rows = [
        {
            "principal": p,
            "permissions": " ".join(x for x in PERMISSIONS if x in perms),
        }
        for p, perms in sorted(grants.items())
    ]
    emit_rows(rows, ["principal", "permissions"], state.output)


@access.command("denied")
@click.option("--limit", type=int, default=50, show_default=True)
@pass_state
def denied(state: State, limit: int) -> None:
    """The latest denied attempts, newest first.

    \b
    Example:
      certledger access denied --limit 10
    """
    rows = state.queries.denials(limit)
    emit_rows(rows, ["at", "principal", "permission", "target", "request_id"], state.output)


COMMANDS = [access]
