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
@pass_state
def worker(state: State, once: bool, interval: float) -> None:
    """Run the operation worker (self-signing, provider orders, promotion).

    \b
    Example:
      certledger worker --once
    """
    from ledger.worker import Worker

    runner = Worker(state.ledger)
    if once:
        click.echo(f"advanced {runner.run_once()} step(s)", err=True)
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo("worker running; Ctrl-C stops it", err=True)
    runner.run(stop, interval)


COMMANDS = [worker]
