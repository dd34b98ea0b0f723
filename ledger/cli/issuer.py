"""`certledger issuer ...`: issuer objects naming a CA provider."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.cli.output import emit
from projections import bundles


@click.group()
def issuer() -> None:
    """Issuer objects: which CA provider to order certificates from."""


@issuer.command("create")
@click.argument("name")
@click.option("--provider", required=True, help="A provider name, e.g. LocalCA.")
@click.option("--account-id", help="The account at the CA.")
@click.option("--password", help="The account's password or key (kept in key custody).")
@click.option("--org-id", help="Organisation id at the CA.")
@click.option("--admin", "admins", multiple=True, metavar="EMAIL", help="Admin contact email.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@pass_state
def create(
    state: State,
    name: str,
    provider: str,
    account_id: str | None,
    password: str | None,
    org_id: str | None,
    admins: tuple[str, ...],
    disabled: bool,
) -> None:
    """Create or replace an issuer object.

    \b
    Example:
      certledger issuer create corp-ca --provider LocalCA
    """
    found = state.ledger.set_issuer(
        state.ctx(),
        name,
        provider=provider,
        account_id=account_id,
        password=password,
        org_id=org_id,
        admin_contacts=[{"email": a} for a in admins],
        enabled=not disabled,
    )
    emit(bundles.issuer_bundle(found, state.settings.vault_url), state.output)


@issuer.command("show")
@click.argument("name")
@pass_state
def show(state: State, name: str) -> None:
    """Show an issuer object as Key Vault's IssuerBundle.

    \b
    Example:
      certledger issuer show corp-ca --output json
    """
    found = state.ledger.issuer(state.ctx(), name)
    emit(bundles.issuer_bundle(found, state.settings.vault_url), state.output)


@issuer.command("delete")
@click.argument("name")
@pass_state
def delete(state: State, name: str) -> None:
    """Delete an issuer object.

    \b
    Example:
      certledger issuer delete corp-ca
    """
    found = state.ledger.delete_issuer(state.ctx(), name)
    emit(bundles.issuer_bundle(found, state.settings.vault_url), state.output)


COMMANDS = [issuer]
