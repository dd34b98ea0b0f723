"""Making a report: read the views (live or as of a moment), build it, write it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from ledger.database import Db
from ledger.domain.errors import BadParameter
from ledger.reports import compliance_parts, lineage_sql
from ledger.reports.compliance import compliance_report
from ledger.reports.lineage import lineage_report
from ledger.reports.model import Checkpoint, ReportContext
from ledger.reports.parallel import Timings
from ledger.reports.render_csv import write_csv
from ledger.reports.render_html import write_html
from ledger.reports.render_json import write_json, write_json_lines
from ledger.reports.rules import RulesFile
from ledger.reports.source import CertificateRows, load_certificates, policy_book_for
from ledger.reports.timeline import timeline_svg

KINDS = ("lineage", "compliance")
FORMATS = ("json", "csv", "html")


@dataclass(frozen=True)
class ViewsAt:
    """The views a report reads and the point of the log they stand at."""

    db: Db
    log_position: int
    report_time: datetime
    as_of: datetime | None = None
    at_position: int | None = None


def views_position(db: Db) -> int:
    """The log position every view has reached."""
    rows = db.execute("SELECT MIN(position) FROM v_tracking")
    return int(rows[0][0] or 0) if rows else 0


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a report makes millions of small acyclic objects,
    and each collection would walk all of them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Built:
    """A built report: its header and summary, its long list (certificates or findings)
    as JSON lines when it was written that way, and the whole document on demand."""

    def __init__(
        self,
        head: dict[str, Any],
        report_time: datetime,
        materialise: Callable[[], tuple[dict[str, Any], list[CertificateRows]]],
        lines: dict[str, list[str]] | None = None,
        timings: Timings | None = None,
    ) -> None:
        self.head = head
        # database, Python and CPU seconds of the processes that built it (when known)
        self.timings = timings
        self.report_time = report_time
        self.lines = lines or {}
        self._materialise = materialise
        self._whole: tuple[dict[str, Any], list[CertificateRows]] | None = None

    @classmethod
    def of(
        cls, report: dict[str, Any], certs: list[CertificateRows], report_time: datetime
    ) -> Built:
        built = cls(report, report_time, lambda: (report, certs))
        built._whole = (report, certs)
        return built

    @property
    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = self.head["summary"]
        return summary

    @property
    def report(self) -> dict[str, Any]:
        """The whole report as one document (built now when it was written as lines)."""
        return self._built()[0]

    @property
    def certs(self) -> list[CertificateRows]:
        return self._built()[1]

    def _built(self) -> tuple[dict[str, Any], list[CertificateRows]]:
        if self._whole is None:
            with no_gc():
                self._whole = self._materialise()
        return self._whole


def build_report(
    kind: str,
    views: ViewsAt,
    checkpoint: Callable[[], Checkpoint],
    *,
    names: Sequence[str] | None = None,
    rules: RulesFile | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    lines: bool = True,
) -> Built:
    """Build the `kind` report from `views`; `checkpoint` gives the audit checkpoint it states.

    With `lines`, the long list is written as JSON lines where that is faster (for JSON
    output; CSV and HTML read the whole document, which is then built from dicts).
    """
    if kind not in KINDS:
        raise BadParameter(f"unknown report {kind!r}; reports: {', '.join(KINDS)}")
    with no_gc():
        return _build(kind, views, checkpoint, names, rules, now, lines)


def _build(
    kind: str,
    views: ViewsAt,
    checkpoint: Callable[[], Checkpoint],
    names: Sequence[str] | None,
    rules: RulesFile | None,
    now: Callable[[], datetime],
    lines: bool,
) -> Built:
    context = ReportContext(
        generated_at=now(),
        report_time=views.report_time,
        as_of=views.as_of,
        at_position=views.at_position,
        log_position=views.log_position,
        checkpoint=checkpoint(),
    )

    def whole() -> tuple[dict[str, Any], list[CertificateRows]]:
        certs = load_certificates(views.db, names, for_rules=kind == "compliance")
        if kind == "lineage":
            return lineage_report(certs, context), certs
        policies = policy_book_for(views.db, certs, everything=names is None)
        return compliance_report(certs, policies, rules or RulesFile(), context), certs

    if not lines or names is not None:
        report, certs = whole()
        return Built.of(report, certs, views.report_time)
    if kind == "lineage" and lineage_sql.supported(views.db):
        fast = lineage_sql.lineage_lines(views.db, context)
        head = {**context.header("lineage"), "summary": fast.summary}
        return Built(head, views.report_time, whole, {"certificates": fast.lines}, fast.timings)
    if kind == "compliance":
        rules_file = rules or RulesFile()
        found = compliance_parts.finding_lines(views.db, rules_file, views.report_time)
        head = {
            **context.header("compliance"),
            "rules": rules_file.as_json(),
            "summary": found.summary,
        }
        return Built(head, views.report_time, whole, {"findings": found.lines}, found.timings)
    report, certs = whole()
    return Built.of(report, certs, views.report_time)


def write_report(built: Built, fmt: str, out: TextIO, *, timeline_limit: int = 200) -> None:
    with no_gc():
        _write(built, fmt, out, timeline_limit)


def _write(built: Built, fmt: str, out: TextIO, timeline_limit: int) -> None:
    if fmt == "json":
        if built.lines:
            write_json_lines(built.head, out, built.lines)
        else:
            write_json(built.report, out)
    elif fmt == "csv":
        write_csv(built.report, out)
    elif fmt == "html":
        svg, shown, total = timeline_svg(built.certs, built.report_time, limit=timeline_limit)
        write_html(built.report, out, timeline=svg, shown=shown, total=total)
    else:
        raise BadParameter(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
