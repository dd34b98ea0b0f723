"""`certledger lifetime plan` and `certledger notifications list`."""

from __future__ import annotations

from datetime import timedelta

import click

from ledger.cli import State
from ledger.cli.common import pass_state
from ledger.cli.output import emit_rows

PLAN_COLUMNS = ["when", "certificate", "version", "action", "trigger", "outcome", "detail"]
NOTIFICATION_COLUMNS = [
    "raised",
    "certificate",
    "version",
    "kind",
    "trigger",
    "target",
    "status",
    "attempts",
    "next_attempt",
    "last_error",
]


def _text(moment: object) -> str:
    from datetime import datetime

    assert isinstance(moment, datetime)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group("lifetime")
def lifetime() -> None:
    """Lifetime actions: automatic renewal and expiry notices."""


@lifetime.command("plan")
@click.option(
    "--until",
    metavar="TIME",
    help="List what falls due up to TIME (ISO 8601; default: 90 days from now).",
)
@click.option("--name", help="Only this certificate.")
@pass_state
def plan(state: State, until: str | None, name: str | None) -> None:
    """What the worker will renew or notify, and when (from the current versions).

    Items overdue (the worker has not run since they fell due) are listed at now.
    `--now` on certledger previews from another moment.

    \b
    Examples:
      certledger lifetime plan --until 2027-01-01
      certledger --now 2026-11-01 lifetime plan --name web -o json
    """
    from ledger.clock import clock_from
    from ledger.lifetime.rules import plan as plan_of
    from ledger.moments import parse_moment
    from projections.lifetime import lifetime_facts

    state.authorize_read("list", "certificates")
    settings = state.settings.lifetime
    now = clock_from(state.settings.now)()
    end = parse_moment(until) if until else now + timedelta(days=90)
    if end < now:
        raise click.BadParameter(f"{until} is before now ({_text(now)})", param_hint="--until")
    items = []
    for facts in lifetime_facts(state.queries.db, name):
        items.extend(plan_of(facts, now, end, settings.near_expiry_days, settings.renewal_attempts))
    items.sort(key=lambda p: (p.when, p.name, p.action))
    rows = [
        {
            "when": _text(p.when),
            "certificate": p.name,
            "version": p.version,
            "action": p.action,
            "trigger": p.trigger,
            "outcome": p.outcome,
            "detail": p.detail,
        }
        for p in items
    ]
    emit_rows(rows, PLAN_COLUMNS, state.output)


@click.group("notifications")
def notifications() -> None:
    """Notifications (near expiry, expired, new version, failure) and their deliveries."""


@notifications.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    help="Only deliveries in this state (pending includes those waiting for a retry).",
)
@click.option("--name", help="Only this certificate.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@pass_state
def notifications_list(state: State, status: str | None, name: str | None, limit: int) -> None:
    """Each notification's deliveries: attempts, the last error, the next attempt.

    \b
    Examples:
      certledger notifications list
      certledger notifications list --status pending -o json
    """
    from projections.notifications import notification_rows

    state.authorize_read("list", "certificates")
    rows = [
        {
            "id": r["notification_id"],
            "raised": r["raised_at"],
            "certificate": r["name"],
            "version": r["version"],
            "kind": r["kind"],
            "type": r["event_type"],
            "trigger": r["trigger_key"],
            "target": r["target"],
            "status": r["status"],
            "attempts": r["attempts"],
            "next_attempt": r["next_attempt"],
            "delivered_at": r["delivered_at"],
            "last_error": r["last_error"],
        }
        for r in notification_rows(state.queries.db, status=status, name=name, limit=limit)
    ]
    emit_rows(rows, NOTIFICATION_COLUMNS, state.output)


COMMANDS = [lifetime, notifications]
