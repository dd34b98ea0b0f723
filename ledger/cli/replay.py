"""`certledger replay`: rebuild every view from the log and report where they differ."""

from __future__ import annotations

import sys

import click

from ledger.cli import EXIT_DRIFT, State
from ledger.cli.common import pass_state
from ledger.cli.output import emit_rows
from ledger.database import DatabaseUrl, Db
from projections.drift import compare
from projections.projector import Projector


@click.command("replay")
@pass_state
def replay(state: State) -> None:
    """Replay the whole event log into fresh views and compare them with the live ones.

    Exits with status 7 when a view disagrees with the log (drift), listing each
    difference by certificate and field.

    \b
    Example:
      certledger replay --output json
    """
    live = state.projector
    live.catch_up()
    fresh = Projector(Db(DatabaseUrl.memory()), live.recorder, live.mapper)
    head = live.head()
    if sys.stderr.isatty() and head:
        with click.progressbar(length=head, label="replaying the log", file=sys.stderr) as bar:
            done = [0]

            def advance(position: int, total: int) -> None:
                bar.update(position - done[0])
                done[0] = position

            fresh.catch_up(batch_size=5000, progress=advance)
    else:
        fresh.catch_up(batch_size=5000)
    drifts = compare(live.db, fresh.db, live.views)
    fresh.db.close()
    if state.output == "json":
        emit_rows([d.as_json() for d in drifts], [], "json")
    elif drifts:
        rows = [
            {
                "certificate": d.certificate,
                "view": d.view,
                "table": d.table,
                "field": d.field,
                "from_log": d.from_log,
                "in_view": d.in_view,
            }
            for d in drifts
        ]
        emit_rows(
            rows, ["certificate", "view", "table", "field", "from_log", "in_view"], state.output
        )
    if drifts:
        click.echo(f"error: {len(drifts)} difference(s) between the views and the log", err=True)
        sys.exit(EXIT_DRIFT)
    click.echo(f"replayed {head} event(s): every view agrees with the log", err=True)


COMMANDS = [replay]
