"""`certledger key ...` and `certledger secret ...`: the managed key and secret."""

from __future__ import annotations

import base64
import binascii

import click

from ledger.cli import State
from ledger.cli.common import pass_state, point_in_time
from ledger.cli.output import emit
from ledger.domain.errors import BadParameter
from ledger.moments import PointInTime


@click.group()
def key() -> None:
    """The certificate's managed key (read-only; usable without leaving the vault)."""


@key.command("show")
@click.argument("name")
@click.option("--version", "version", help="A version id (default: the current version).")
@point_in_time
@pass_state
def key_show(state: State, name: str, version: str | None, at: PointInTime) -> None:
    """Show the managed key as Key Vault's KeyBundle (public JWK only).

    \b
    Example:
      certledger key show web --output json
    """
    state.authorize_read("get", f"keys/{name}")
    emit(state.queries_at(name, at).key(name, version), state.output)


@key.command("sign")
@click.argument("name")
@click.option("--alg", required=True, help="RS256, PS256, ES256, ES384, ... as in Key Vault.")
@click.option("--digest", required=True, help="The digest to sign, hex or base64url.")
@click.option("--version", "version", help="A version id (default: the current version).")
@pass_state
def key_sign(state: State, name: str, alg: str, digest: str, version: str | None) -> None:
    """Sign a digest with the certificate's key; prints Key Vault's KeyOperationResult.

    \b
    Example:
      certledger key sign web --alg ES256 --digest $(printf hi | sha256sum | cut -c1-64)
    """
    try:
        raw = bytes.fromhex(digest)
    except ValueError:
        try:
            raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
        except (binascii.Error, ValueError) as exc:
            raise BadParameter("--digest: expected hex or base64url") from exc
    signature, v = state.ledger.sign(state.ctx(), name, version, alg, raw)
    value = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    emit(
        {"kid": f"{state.settings.vault_url}/keys/{name}/{v.version}", "value": value}, state.output
    )


@click.group()
def secret() -> None:
    """The certificate's managed secret: the certificate with its private key."""


@secret.command("show")
@click.argument("name")
@click.option("--version", "version", help="A version id (default: the current version).")
@click.option("--metadata", is_flag=True, help="Only the secret's attributes, not its value.")
@point_in_time
@pass_state
def secret_show(
    state: State, name: str, version: str | None, metadata: bool, at: PointInTime
) -> None:
    """Show the secret (PKCS#12 base64 or PEM, per the policy's content type).

    With --as-of or --at-position, only the metadata as it stood then.

    \b
    Examples:
      certledger secret show web --output json
      certledger secret show web --metadata --as-of 2026-01-31
    """
    if metadata or not at.is_now:
        state.authorize_read("get", f"secrets/{name}")
        emit(state.queries_at(name, at).secret(name, version), state.output)
        return
    value, v = state.ledger.secret_value(state.ctx(), name, version)
    if state.output == "json":
        emit({"value": value, **state.queries.secret(name, v.version)}, "json")
    else:
        click.echo(value if value.endswith("\n") else value + "\n", nl=False)


COMMANDS = [key, secret]
