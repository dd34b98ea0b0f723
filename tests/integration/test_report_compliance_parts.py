"""The compliance findings built by id range, in one or two processes, are the report's."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.reports.compliance import compliance_report
from ledger.reports.compliance_parts import finding_lines
from ledger.reports.model import Checkpoint, ReportContext
from ledger.reports.render_json import write_json, write_json_lines
from ledger.reports.rules import parse_rules
from ledger.reports.source import PolicyBook, load_certificates
from tests.integration.conftest import Clock, PolicyFactory
from tests.integration.test_report_lineage import caught_up
from tests.support.report_story import build_story

CHECKPOINT = Checkpoint(origin="test", tree_size=7, root_hash="cm9vdA==")
# Every rule on, some only for some issuers, so that each one finds something.
RULES = {
    "max_validity": {"max_months": 6},
    "integrated_ca": {"enabled": True},
    "non_integrated_ca": {"enabled": True, "common_names": ["nobody"], "issuers": ["corp"]},
    "validity_period": {"exclude_issuers": ["Unknown"]},
}


@pytest.mark.parametrize("parallel_from", [2, 10_000])
def test_parts_give_the_report_findings(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory, parallel_from: int
) -> None:
    for name in ("web", "Api", "zeta"):
        build_story(ledger, clock, ctx, make_policy, name=name)
    db = caught_up(ledger)
    now = datetime.now(UTC)
    rules = parse_rules({"rules": RULES})
    got = finding_lines(db, rules, now, jobs=2, parallel_from=parallel_from)

    context = ReportContext(now, now, None, None, 1, CHECKPOINT)
    report = compliance_report(
        load_certificates(db, for_rules=True), PolicyBook(db), rules, context
    )
    assert got.summary == report["summary"]
    assert got.summary["certificates_with_findings"] == 3
    assert got.timings.db > 0
    reference, lines = io.StringIO(), io.StringIO()
    write_json({"findings": report["findings"]}, reference)
    write_json_lines({}, lines, {"findings": got.lines})
    assert lines.getvalue() == reference.getvalue()
    assert len(got.lines) > 3 * 5
