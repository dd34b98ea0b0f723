"""`certledger history NAME`: a certificate's whole event timeline."""

from __future__ import annotations

import click

from ledger.cli import State
from ledger.cli.common import pass_state, point_in_time
from ledger.cli.output import emit_rows
from ledger.moments import PointInTime, parse_moment


def _facts_text(facts: dict[str, object]) -> str:
    return "; ".join(f"{k}={v}" for k, v in facts.items() if v not in (None, "", [], {}))


@click.command("history")
@click.argument("name")
@click.option("--version", "version", help="Only this version's events.")
@click.option("--since", metavar="TIME", help="Only events at or after TIME (ISO 8601).")
@point_in_time
@pass_state
def history(
    state: State, name: str, version: str | None, since: str | None, at: PointInTime
) -> None:
    """The certificate's events: time, version, event, actor, request id, what changed.

    --as-of / --at-position end the timeline at that moment.

    \b
    Examples:
      certledger history web
      certledger history web --since 2026-01-01 --as-of 2026-06-30 --output csv
    """
    state.ledger.authorize(state.ctx(), "get", f"certificates/{name}")
    entries = state.history().timeline(
        name, version=version, since=parse_moment(since) if since else None, at=at
    )
    if state.output == "json":
        emit_rows([e.as_json() for e in entries], [], "json")
        return
    rows = [
        {
            "position": e.position,
            "time": e.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z",
            "version": e.version[:12] if state.output == "table" else e.version,
            "event": e.event,
            "actor": e.actor,
            "request_id": e.request_id,
            "facts": _facts_text(e.facts),
        }
        for e in entries
    ]
    columns = ["position", "time", "version", "event", "actor", "request_id", "facts"]
    emit_rows(rows, columns, state.output)


COMMANDS = [history]
