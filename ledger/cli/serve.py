"""`certledger serve`: the Key Vault compatible HTTPS API."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8443, show_default=True)
@click.option(
    "--vault-url",
    envvar="CERTLEDGER_VAULT_URL",
    help="The URL clients use, in ids and links (default https://localhost:PORT).",
)
@click.option(
    "--tls-host",
    "tls_hosts",
    multiple=True,
    default=("localhost",),
    show_default=True,
    help="DNS name or IP address in the server certificate (repeatable); localhost, "
    "127.0.0.1, ::1 and an IP --host are always in it.",
)
@click.option("--no-worker", is_flag=True, help="Leave pending operations to `certledger worker`.")
@click.option(
    "--worker-threads",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Worker threads, each taking its share of the certificates.",
)
@click.option(
    "--pending-wait",
    type=click.FloatRange(0, 30),
    default=1.0,
    show_default=True,
    help="Seconds a GET of an operation in progress may wait for this process's worker to "
    "finish it (0: answer at once).",
)
@click.option(
    "--no-projections", is_flag=True, help="Leave the views to `certledger projections run`."
)
@pass_state
def serve(
    state: State,
    host: str,
    port: int,
    vault_url: str | None,
    tls_hosts: tuple[str, ...],
    no_worker: bool,
    worker_threads: int,
    pending_wait: float,
    no_projections: bool,
) -> None:
    """Serve Key Vault's certificate REST API over HTTPS (until Ctrl-C).

    The TLS certificate is issued by the ledger's own local CA (issuer and
    certificate `certledger-tls`); clients trust <home>/tls/ca.pem. Requests
    need a bearer token from `certledger token issue`.

    \b
    Example:
      certledger serve --port 8443
      certledger token issue --principal app1 --expires 8h
    """
    from ledger.api.server import ServeOptions
    from ledger.api.server import serve as run

    def say(line: str) -> None:
        click.echo(f"certledger: {line}", err=True)

    options = ServeOptions(
        host=host,
        port=port,
        vault_url=vault_url,
        tls_hosts=tls_hosts,
        worker=not no_worker,
        worker_threads=worker_threads,
        pending_wait=pending_wait,
        projections=not no_projections,
    )
    run(state.settings, options, say)


COMMANDS = [serve]
