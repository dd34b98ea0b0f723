"""`certledger worker`: drive pending operations forward."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from ledger.cli import State
from ledger.cli.common import pass_state


@click.command("worker")
@click.option("--once", is_flag=True, help="Advance what can be advanced now, then exit.")
@click.option(
    "--interval", type=float, default=0.5, show_default=True, help="Seconds between polls."
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    help="Tries of a failing CA call before the operation fails "
    "(default $CERTLEDGER_WORKER_MAX_ATTEMPTS or 5).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    help="Seconds before the first retry, doubling each time "
    "(default $CERTLEDGER_WORKER_BACKOFF or 1).",
)
@pass_state
def worker(
    state: State, once: bool, interval: float, max_attempts: int | None, backoff: float | None
) -> None:
    """Run the operation worker (self-signing, provider orders, promotion).

    It also fires lifetime actions (automatic renewal, expiry notices) and delivers
    notifications; `certledger --now TIME worker --once` acts as if it were TIME.

    Every step is saved before the next one starts: a worker killed at any point is simply
    started again. Several workers may share one ledger.

    \b
    Examples:
      certledger worker
      certledger worker --once --max-attempts 3 --backoff 2
    """
    from dataclasses import replace

    from ledger.worker import Worker

    settings = state.settings.worker
    if max_attempts is not None:
        settings = replace(settings, max_attempts=max_attempts)
    if backoff is not None:
        settings = replace(settings, backoff=backoff)
    runner = Worker(state.ledger, settings)
    if once:
        try:
            click.echo(f"advanced {runner.run_once()} step(s)", err=True)
        finally:
            runner.close()
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo("worker running; Ctrl-C stops it", err=True)
    try:
        runner.run(stop, interval)
    finally:
        runner.close()


COMMANDS = [worker]
