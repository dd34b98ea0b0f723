"""`certledger issuer ...`: issuer objects naming a CA provider."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.cli.output import emit, emit_rows


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
@click.option("--directory-url", metavar="URL", help="ACME: the CA's directory URL.")
@click.option("--email", metavar="EMAIL", help="ACME: the account's contact email.")
@click.option(
    "--challenge",
    type=click.Choice(["http-01", "dns-01"]),
    help="ACME: how domains are validated (default http-01).",
)
@click.option("--http-host", metavar="HOST", help="ACME http-01: listen address (default all).")
@click.option(
    "--http-port", type=int, metavar="PORT", help="ACME http-01: listen port (default 80)."
)
@click.option(
    "--dns-hook",
    metavar="CMD",
    help="ACME dns-01: command that publishes/removes the TXT record (see docs/acme.md).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="ACME: PEM file of CAs to trust for the ACME server's TLS (default: system).",
)
@click.option(
    "--wait-seconds",
    type=float,
    metavar="S",
    help="ACME: how long one worker step drives an order before leaving it pending.",
)
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
    directory_url: str | None,
    email: str | None,
    challenge: str | None,
    http_host: str | None,
    http_port: int | None,
    dns_hook: str | None,
    ca_bundle: str | None,
    wait_seconds: float | None,
) -> None:
    """Create or replace an issuer object.

    For an ACME issuer, --account-id and --password are the CA's external account binding
    (key id and base64url HMAC key), when the CA asks for one.

    \b
    Examples:
      certledger issuer create corp-ca --provider LocalCA
      certledger issuer create le --provider acme \\
        --directory-url https://acme.example/directory --email ops@example.com \\
        --challenge http-01 --http-port 80
    """
    given = {
        "directory_url": directory_url,
        "email": email,
        "challenge": challenge,
        "http_host": http_host,
        "http_port": http_port,
        "dns_hook": dns_hook,
        "ca_bundle": ca_bundle,
        "wait_seconds": wait_seconds,
    }
    params = {k: v for k, v in given.items() if v is not None}
    state.ledger.set_issuer(
        state.ctx(),
        name,
        provider=provider,
        account_id=account_id,
        password=password,
        org_id=org_id,
        admin_contacts=[{"email": a} for a in admins],
        enabled=not disabled,
        provider_params=params,
    )
    emit(state.queries.issuer(name), state.output)


@issuer.command("show")
@click.argument("name")
@pass_state
def show(state: State, name: str) -> None:
    """Show an issuer object as Key Vault's IssuerBundle.

    \b
    Example:
      certledger issuer show corp-ca --output json
    """
    state.authorize_read("getissuers", f"certificates/issuers/{name}")
    emit(state.queries.issuer(name), state.output)


@issuer.command("delete")
@click.argument("name")
@pass_state
def delete(state: State, name: str) -> None:
    """Delete an issuer object.

    \b
    Example:
      certledger issuer delete corp-ca
    """
    body = state.queries.issuer(name)
    state.ledger.delete_issuer(state.ctx(), name)
    emit(body, state.output)


@issuer.command("list")
@pass_state
def list_(state: State) -> None:
    """List issuer objects.

    \b
    Example:
      certledger issuer list
    """
    state.authorize_read("listissuers", "certificates/issuers")
    emit_rows(state.queries.issuers(), ["id", "provider"], state.output)


@click.group()
def contacts() -> None:
    """Certificate contacts: who hears about certificate lifecycle events."""


@contacts.command("set")
@click.argument("emails", nargs=-1, required=True)
@pass_state
def contacts_set(state: State, emails: tuple[str, ...]) -> None:
    """Replace the contacts (each EMAIL, or NAME=EMAIL).

    \b
    Example:
      certledger contacts set ops@example.com "Alice=alice@example.com"
    """
    entries = []
    for item in emails:
        person, sep, email = item.rpartition("=")
        entries.append({"email": email, "name": person} if sep else {"email": email})
    state.ledger.set_contacts(state.ctx(), entries)
    emit(state.queries.contacts(), state.output)


@contacts.command("show")
@pass_state
def contacts_show(state: State) -> None:
    """Show the contacts.

    \b
    Example:
      certledger contacts show --output json
    """
    state.authorize_read("managecontacts", "certificates/contacts")
    emit(state.queries.contacts(), state.output)


@contacts.command("delete")
@pass_state
def contacts_delete(state: State) -> None:
    """Delete the contacts.

    \b
    Example:
      certledger contacts delete
    """
    body = state.queries.contacts()
    state.ledger.delete_contacts(state.ctx())
    emit(body, state.output)


COMMANDS = [issuer, contacts]
