"""`certledger token issue`: bearer tokens for the API."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state


@click.group("token")
def token() -> None:
    """Bearer tokens for `certledger serve` (signed with <home>/token.key)."""


@token.command("issue")
@click.option("--principal", "principal", required=True, help="Who the token speaks for.")
@click.option("--expires", default="1h", show_default=True, help="Lifetime: 90s, 30m, 8h, 7d.")
@pass_state
def issue(state: State, principal: str, expires: str) -> None:
    """Print a token for PRINCIPAL; its permissions come from `certledger access grant`.

    \b
    Example:
      certledger token issue --principal app1 --expires 8h
    """
    from ledger.keys.master import load_key
    from ledger.tokens import TokenAuthority, parse_duration

    try:
        lifetime = parse_duration(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    settings = state.settings
    key = load_key(
        settings.token_key_file, settings.token_key_b64, "CERTLEDGER_TOKEN_KEY", "token key"
    )
    click.echo(TokenAuthority(key).issue(principal, lifetime))


COMMANDS = [token]
