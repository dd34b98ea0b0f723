"""`certledger report ...`: lineage and compliance reports for auditors."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from ledger.cli import State
from ledger.cli.common import pass_state, point_in_time
from ledger.domain.errors import BadParameter
from ledger.moments import PointInTime

if TYPE_CHECKING:
    from ledger.reports.model import Checkpoint
    from ledger.reports.run import ViewsAt


def report_checkpoint(state: State) -> Checkpoint:
    """The signed audit checkpoint a report states it was computed from.

    The log signs a checkpoint covering every stored event (or reuses the latest one when
    nothing was stored since), so a report can be tied to the proven log.
    """
    import base64

    from ledger.reports.model import Checkpoint

    row = state.ledger.audit.checkpoint()
    origin = row.note.split("\n", 1)[0]
    return Checkpoint(
        origin=origin,
        tree_size=row.size,
        root_hash=base64.b64encode(row.root).decode("ascii"),
        note=row.note,
    )


def _views(state: State, at: PointInTime, names: tuple[str, ...]) -> tuple[ViewsAt, Checkpoint]:
    """The views the report reads, and the checkpoint it states: signed first, since
    signing the first checkpoint stores an event (the log's key), which the views then
    include, so that the views stand where the checkpoint does."""
    if names:
        for name in names:
            state.authorize_read("get", f"certificates/{name}")
    else:
        state.authorize_read("list", "certificates")
    checkpoint = report_checkpoint(state)
    return _views_at(state, at, names), checkpoint


def _views_at(state: State, at: PointInTime, names: tuple[str, ...]) -> ViewsAt:
    from ledger.reports.run import ViewsAt, views_position

    if at.is_now:
        db = state.queries.db  # caught up with the log first
        return ViewsAt(db, views_position(db), datetime.now(UTC))
    from ledger.reports.asof import views_as_of

    memory, position, latest = views_as_of(
        state.ledger, state.projector.db, at, list(names) if names else None
    )
    moment = at.until_time or latest or datetime.now(UTC)
    return ViewsAt(memory, position, moment, at.until_time, at.until_position)


def _emit(state: State, built: Any, fmt: str, out: str | None, timeline_limit: int) -> None:
    from ledger.reports.run import write_report

    with ExitStack() as stack:
        stream: TextIO
        if out and out != "-":
            try:
                stream = stack.enter_context(Path(out).open("w", encoding="utf-8", newline=""))
            except OSError as exc:
                raise BadParameter(f"--out {out}: cannot write it ({exc.strerror})") from exc
        else:
            stream = sys.stdout
        write_report(built, fmt, stream, timeline_limit=timeline_limit)
    if out and out != "-":
        summary = built.summary
        what = (
            f"{summary['findings']} finding(s)"
            if built.head["report"] == "compliance"
            else f"{summary['versions']} version(s)"
        )
        click.echo(
            f"{built.head['report']} report: {summary['certificates']} certificate(s),"
            f" {what} -> {out}",
            err=True,
        )


def report_options(command: Any) -> Any:
    command = click.option(
        "--timeline-limit",
        type=click.IntRange(min=1),
        default=200,
        show_default=True,
        help="HTML: certificates drawn in the timeline (every one is in the tables).",
    )(command)
    command = click.option(
        "--out", metavar="FILE", help="Write the report to FILE (default: standard output)."
    )(command)
    command = click.option(
        "--format",
        "fmt",
        type=click.Choice(["json", "csv", "html"]),
        default="json",
        show_default=True,
        help="json (versioned schema), csv (one row per version or finding), html (one page).",
    )(command)
    return point_in_time(command)


@click.group("report")
def report() -> None:
    """Lineage and compliance reports, computed from the log and tied to its checkpoint."""


@report.command("lineage")
@click.argument("names", nargs=-1)
@report_options
@pass_state
def lineage(
    state: State,
    names: tuple[str, ...],
    fmt: str,
    out: str | None,
    timeline_limit: int,
    at: PointInTime,
) -> None:
    """Each certificate's versions: how each came to be, its key, issuer, what the CA
    changed, the policy in force and what changed in it, and the gaps and overlaps.

    NAME ... limits the report to those certificates (default: every certificate).

    \b
    Examples:
      certledger report lineage web api --format html --out lineage.html
      certledger report lineage --as-of 2026-06-30 --format csv > lineage.csv
    """
    from ledger.reports.run import build_report

    views, checkpoint = _views(state, at, names)
    built = build_report(
        "lineage",
        views,
        lambda: checkpoint,
        names=list(names) or None,
        lines=fmt == "json",
    )
    _emit(state, built, fmt, out, timeline_limit)


@report.command("compliance")
@click.option(
    "--rules",
    "rules_file",
    metavar="FILE",
    help="Rules and thresholds (.toml or .json); see docs/reports.md. Default: built-in.",
)
@report_options
@pass_state
def compliance(
    state: State,
    rules_file: str | None,
    fmt: str,
    out: str | None,
    timeline_limit: int,
    at: PointInTime,
) -> None:
    """Findings of Azure Policy's Key Vault certificate rules and the CA/Browser Forum
    baseline checks, for each version at its issuance and for each current version now.

    \b
    Examples:
      certledger report compliance --format html --out compliance.html
      certledger report compliance --rules rules.toml --as-of 2026-01-01 --format csv
    """
    from ledger.reports.rules import load_rules
    from ledger.reports.run import build_report

    rules = load_rules(rules_file)
    views, checkpoint = _views(state, at, ())
    built = build_report("compliance", views, lambda: checkpoint, rules=rules, lines=fmt == "json")
    _emit(state, built, fmt, out, timeline_limit)


COMMANDS = [report]
