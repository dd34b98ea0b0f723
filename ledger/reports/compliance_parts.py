"""The compliance report's findings as JSON lines, built by id range in two processes.

Each part reads the certificates of a range of ids and the policies they name, evaluates
them (`compliance.evaluate`), writes its findings as JSON and counts them; the parts are
put together in name order, which is the order `compliance.compliance_report` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ledger.database import DatabaseUrl, Db
from ledger.reports import parallel
from ledger.reports.compliance import (
    Evaluation,
    FindingTally,
    compile_rules,
    evaluate,
    summary,
)
from ledger.reports.parallel import Stopwatch, Timings
from ledger.reports.rules import RulesFile
from ledger.reports.source import CHECK_FIELDS, IdRange, PolicyBook, load_certificates


@dataclass
class FindingLines:
    """The report's summary and its findings, one JSON text each, in report order."""

    summary: dict[str, Any]
    lines: list[str]
    timings: Timings  # of every process


@dataclass
class Part:
    evaluation: Evaluation  # without its findings
    tally: FindingTally
    certificates: list[tuple[tuple[str, str], list[str]]]  # sort key, finding lines
    timings: Timings


def compliance_part(db: Db, rules_file: RulesFile, report_time: datetime, ids: IdRange) -> Part:
    """The findings of the certificates whose ids are in `ids`."""
    timings = Timings()
    watch = Stopwatch(timings)
    certs = watch.query(lambda: load_certificates(db, ids=ids, fields=CHECK_FIELDS))
    policies = watch.query(lambda: PolicyBook(db))  # all: cheaper than those of the range
    rules = compile_rules(rules_file.rules)
    result = evaluate(certs, policies, rules, report_time)
    tally = FindingTally(rules)
    by_severity, violations, by_evaluation = (
        tally.by_severity,
        tally.violations,
        tally.by_evaluation,
    )
    groups: list[tuple[tuple[str, str], list[str]]] = []
    lines: list[str] = []
    name = None
    dumps = orjson.dumps
    for finding in result.findings:
        if finding["certificate"] != name:
            name = finding["certificate"]
            lines = []
            groups.append(((name.lower(), name), lines))
            tally.certificates.add(name)
        lines.append(dumps(finding).decode())
        by_severity[finding["severity"]] += 1
        violations[finding["rule"]] += 1
        by_evaluation[finding["evaluated"]] += 1
    tally.findings = len(result.findings)
    result.findings = []
    watch.stop()
    return Part(result, tally, groups, timings)


def finding_lines(
    db: Db,
    rules_file: RulesFile,
    report_time: datetime,
    *,
    jobs: int | None = None,
    parallel_from: int | None = None,
) -> FindingLines:
    """Every finding and the summary; on a database file or server with more than one CPU
    and many certificates, a second process evaluates the upper half of the ids."""
    split = None
    if (jobs or parallel.default_jobs()) > 1:
        split = parallel.middle_id(
            db, parallel.PARALLEL_FROM if parallel_from is None else parallel_from
        )
    if split is None:
        part = compliance_part(db, rules_file, report_time, ("", None))
    else:
        with parallel.Worker() as worker:
            upper = worker.submit(_upper_part, db.url, rules_file, report_time, split)
            part = compliance_part(db, rules_file, report_time, ("", split))
            other = upper.get()
        _merge(part, other)
    watch = Stopwatch(part.timings)
    part.certificates.sort(key=_by_name)
    lines = [line for _, found in part.certificates for line in found]
    rules = compile_rules(rules_file.rules)
    result = summary(rules, part.evaluation, part.tally)
    watch.stop()
    return FindingLines(result, lines, part.timings)


def _merge(part: Part, other: Part) -> None:
    mine, theirs = part.evaluation, other.evaluation
    mine.certificates += theirs.certificates
    mine.versions += theirs.versions
    for rule, count in theirs.evaluated.items():
        mine.evaluated[rule] += count
    part.tally.merge(other.tally)
    part.certificates += other.certificates
    part.timings.add(other.timings)


def _by_name(item: tuple[tuple[str, str], list[str]]) -> tuple[str, str]:
    return item[0]


def _upper_part(url: DatabaseUrl, rules_file: RulesFile, report_time: datetime, low: str) -> Part:
    db = url.connect()
    try:
        return compliance_part(db, rules_file, report_time, (low, None))
    finally:
        db.close()
