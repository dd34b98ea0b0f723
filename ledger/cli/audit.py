"""`certledger audit ...`: checkpoints, proofs and verification of the Merkle log."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ledger.audit.note import NoteError, VerifierKey
from ledger.audit.service import AuditError
from ledger.audit.verifier import Progress, VerifyReport
from ledger.cli import State
from ledger.cli.common import pass_state, read_input
from ledger.cli.output import emit
from ledger.domain.errors import BadParameter, NotFound

#: `audit verify` found tampering, or the log refused to sign or prove.
EXIT_TAMPERED = 7


class AuditGroup(click.Group):
    """An inconsistent log is its own exit status, not a usage error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_TAMPERED)


@click.group(cls=AuditGroup)
def audit() -> None:
    """The tamper-evident log: checkpoints, proofs, offline evidence, verification."""


def _write_atomically(path: str, text: str) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(target)
    except OSError as exc:
        raise BadParameter(f"cannot write {path}: {exc.strerror}") from exc


def _read_text(path: str, what: str) -> str:
    try:
        return read_input(path).decode()
    except UnicodeDecodeError as exc:
        raise BadParameter(f"{what} {path} is not UTF-8 text") from exc


@audit.command("checkpoint")
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Keep running: sign a new checkpoint every SECONDS when the log grew.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the checkpoint to FILE (replaced atomically).",
)
@pass_state
def checkpoint(state: State, every: float | None, out: str | None) -> None:
    """Sign a checkpoint of the log now (or reuse the latest if nothing was added).

    \b
    Examples:
      certledger audit checkpoint > checkpoint.txt
      certledger audit checkpoint --every 60 --out /srv/www/checkpoint
    """
    service = state.ledger.require_audit()
    row = service.checkpoint()
    if out:
        _write_atomically(out, row.note)
    if every is None:
        click.echo(row.note, nl=False)
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"checkpoint of size {row.size}; signing every {every:g}s; Ctrl-C stops", err=True)
    while not stop.wait(every):
        grown = service.checkpoint_if_grown()
        if grown is not None:
            if out:
                _write_atomically(out, grown.note)
            click.echo(f"checkpoint of size {grown.size}", err=True)


@audit.command("export-checkpoint")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to FILE instead.")
@pass_state
def export_checkpoint(state: State, out: str | None) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint note).

    \b
    Example:
      certledger audit export-checkpoint > kept-checkpoint.txt
    """
    latest = state.ledger.require_audit().latest_checkpoint()
    if latest is None:
        raise NotFound("no checkpoint yet; make one with `certledger audit checkpoint`")
    if out:
        _write_atomically(out, latest.note)
    else:
        click.echo(latest.note, nl=False)


@audit.command("rotate-key")
@pass_state
def rotate_key(state: State) -> None:
    """Replace the log's signing key (administrators only).

    The old key signs a last checkpoint and cosigns the first one of the new key; the
    rotation is recorded as an event, and checkpoints signed before it still verify.
    Prints the new verifier key: give it to whoever keeps the old one.

    \b
    Example:
      certledger audit rotate-key > log.vkey
    """
    old, new, row = state.ledger.require_audit().rotate_key(state.ctx())
    click.echo(f"retired {old.encode()}; checkpoint of size {row.size} signed by both", err=True)
    click.echo(new.encode())


@audit.command("public-key")
@pass_state
def public_key(state: State) -> None:
    """Print the log's verifier key (C2SP note verifier key: NAME+KEYID+KEY).

    \b
    Example:
      certledger audit public-key > log.vkey
    """
    click.echo(state.ledger.require_audit().verifier_key().encode())


def _emit_bundle(bundle: dict[str, Any], out: str | None) -> None:
    text = json.dumps(bundle, indent=2) + "\n"
    if out:
        _write_atomically(out, text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@audit.command("prove")
@click.argument("name", required=False)
@click.option("--position", type=int, multiple=True, help="Prove the event at this position.")
@click.option("--since", metavar="FILE", help="A checkpoint you kept: add a consistency proof.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the bundle to FILE.")
@pass_state
def prove(
    state: State, name: str | None, position: tuple[int, ...], since: str | None, out: str | None
) -> None:
    """Write an evidence bundle: a certificate's events (or given positions) with proofs.

    The bundle holds the stored events, their positions and inclusion proofs, a signed
    checkpoint and the public key; check it offline with
    `python -m ledger.audit.verify_bundle BUNDLE`.

    \b
    Examples:
      certledger audit prove web --out web-evidence.json
      certledger audit prove --position 0 --position 17 --since kept-checkpoint.txt
    """
    if bool(name) == bool(position):
        raise BadParameter("give a certificate NAME or --position, not both")
    ledger = state.ledger
    old = _read_text(since, "checkpoint") if since else None
    if name:
        ledger.authorize(state.ctx(), "get", f"certificates/{name}")
        bundle = ledger.audit.certificate_evidence(name, since=old)
    else:
        ledger.authorize(state.ctx(), "list", "certificates")
        bundle = ledger.audit.event_evidence(list(position), since=old)
    _emit_bundle(bundle, out)


@audit.command("consistency")
@click.argument("old_checkpoint", metavar="CHECKPOINT_FILE")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the bundle to FILE.")
@pass_state
def consistency(state: State, old_checkpoint: str, out: str | None) -> None:
    """Prove the log still extends an earlier checkpoint (a consistency bundle).

    \b
    Example:
      certledger audit consistency kept-checkpoint.txt --out consistency.json
    """
    old = _read_text(old_checkpoint, "checkpoint")
    _emit_bundle(state.ledger.require_audit().consistency_evidence(old), out)


@contextmanager
def _progress(total: int) -> Iterator[Progress | None]:
    """A progress bar on a terminal; nothing when standard error is piped."""
    if not sys.stderr.isatty() or total < 50_000:
        yield None
        return
    with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
        yield bar.update


def _report(report: VerifyReport) -> dict[str, Any]:
    first = report.first_bad
    return {
        "verified": report.ok,
        "events": report.events,
        "leaves": report.leaves,
        "root": report.root.hex(),
        "checkpoints": [c.size for c in report.checked],
        "firstBadPosition": first.position if first else None,
        "problems": [p.message for p in report.problems],
    }


@audit.command("verify")
@click.option(
    "--against",
    metavar="CHECKPOINT_FILE",
    help="A checkpoint you kept: the log must still hold exactly what it signed.",
)
@click.option(
    "--public-key",
    "public_key_texts",
    metavar="VKEY",
    multiple=True,
    help="The log's verifier key as you kept it (text or file; repeat for keys before and "
    "after a rotation); default: every key the ledger has signed with.",
)
@click.option(
    "--every-leaf",
    is_flag=True,
    help="Also compare every stored leaf row with its event, not only where a tile differs.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes to verify with (default for large logs: one per CPU on SQLite, one per "
    "two CPUs on PostgreSQL).",
)
@pass_state
def verify(
    state: State,
    against: str | None,
    public_key_texts: tuple[str, ...],
    every_leaf: bool,
    jobs: int | None,
) -> None:
    """Recompute every leaf and root from the stored events; check every checkpoint.

    Exits 7 and names the first bad position (and its certificate) on any tampering:
    a changed byte, a deleted or reordered event, a truncated or rewritten tail.

    \b
    Examples:
      certledger audit verify
      certledger audit verify --against kept-checkpoint.txt --public-key log.vkey
    """
    keys = []
    for text in public_key_texts:
        if Path(text).is_file():
            text = _read_text(text, "verifier key")
        try:
            keys.append(VerifierKey.parse(text))
        except NoteError as exc:
            raise BadParameter(f"--public-key: {exc}") from exc
    kept = _read_text(against, "checkpoint") if against else None
    service = state.ledger.require_audit()
    with _progress(service.store.event_count()) as progress:
        report = service.verify(
            against=kept, keys=keys, progress=progress, every_leaf=every_leaf, jobs=jobs
        )
    if state.output == "json":
        emit(_report(report), "json")
    if report.ok:
        if state.output != "json":
            sizes = [c.size for c in report.checked]
            unsigned = report.events - max(sizes, default=0)
            click.echo(
                f"verified {report.events} events; root {report.root.hex()}; "
                f"{len(sizes)} checkpoint(s) match"
                + (f" (latest size {max(sizes)})" if sizes else "")
                + (f"; the last {unsigned} events are in no checkpoint yet" if unsigned else "")
            )
        return
    first = report.first_bad
    assert first is not None
    click.echo(f"TAMPERED: {first.message}", err=True)
    for problem in report.problems:
        if problem is not first:
            click.echo(f"  also: {problem.message}", err=True)
    sys.exit(EXIT_TAMPERED)


COMMANDS = [audit]
