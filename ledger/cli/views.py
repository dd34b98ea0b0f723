"""`certledger projections ...`: the read models' status, rebuild and followers."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.cli.output import emit_rows


@click.group("projections")
def projections() -> None:
    """The read models (views) built from the event log."""


@projections.command("status")
@pass_state
def status(state: State) -> None:
    """Position and lag of each view (events not yet applied).

    \b
    Example:
      certledger projections status
    """
    rows = [
        {"view": s.name, "position": s.position, "head": s.head, "lag": s.lag}
        for s in state.projector.status()
    ]
    emit_rows(rows, ["view", "position", "head", "lag"], state.output)


@projections.command("rebuild")
@click.argument("names", nargs=-1)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=16),
    default=None,
    help="Processes sharing the log out by stream (default: 2 on a multi-core machine).",
)
@pass_state
def rebuild(state: State, names: tuple[str, ...], jobs: int | None) -> None:
    """Rebuild views (default: all) from the whole event log, into new tables that
    replace the views' own at the end: the views keep answering meanwhile.

    \b
    Example:
      certledger projections rebuild inventory
      certledger projections rebuild --jobs 2
    """
    projector = state.projector
    try:
        views = projector.select(names or None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    head = projector.head()
    label = f"rebuilding {', '.join(v.name for v in views)}"
    if sys.stderr.isatty():
        with click.progressbar(length=max(head, 1), label=label, file=sys.stderr) as bar:
            done = [0]

            def advance(position: int, total: int) -> None:
                bar.update(position - done[0])
                done[0] = position

            read = projector.rebuild([v.name for v in views], progress=advance, jobs=jobs)
    else:
        read = projector.rebuild([v.name for v in views], jobs=jobs)
    click.echo(f"rebuilt {len(views)} view(s) up to position {read} of the log", err=True)


@projections.command("run")
@click.option("--interval", type=float, default=0.05, show_default=True, help="Poll interval.")
@pass_state
def run(state: State, interval: float) -> None:
    """Follow the event log and keep every view up to date (until stopped).

    \b
    Example:
      certledger --database-url postgresql://postgres@127.0.0.1/test projections run
    """
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo("projection follower running; Ctrl-C stops it", err=True)
    state.projector.follow(stop, interval)


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Example:
      eval "$(certledger completion bash)"
    """
    from click.shell_completion import get_completion_class

    from ledger.cli import main

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(main, {}, "certledger", "_CERTLEDGER_COMPLETE").source())


COMMANDS = [projections, completion]
