"""The lineage report written by SQLite is, byte for byte, the one built from dicts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import orjson
import pytest

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.reports import lineage_sql
from ledger.reports.lineage import Tally, lineage_entries
from ledger.reports.model import Checkpoint, ReportContext
from ledger.reports.parallel import Timings
from ledger.reports.render_json import write_json, write_json_lines
from ledger.reports.run import ViewsAt, build_report, views_position, write_report
from ledger.reports.source import load_certificates
from ledger.worker import Worker
from tests.integration.conftest import Clock, PolicyFactory
from tests.integration.test_report_lineage import caught_up
from tests.support.report_story import build_story

CHECKPOINT = Checkpoint(origin="test", tree_size=7, root_hash="cm9vdA==", note="test\n7\n")


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the SQL lines are SQLite's; PostgreSQL builds the report from dicts


def story_ledger(ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory) -> None:
    """Two full histories and a certificate whose stored JSON has escapes (a subject with
    an escaped comma, and non-ASCII), and tags with quotes, control and non-ASCII characters."""
    build_story(ledger, clock, ctx, make_policy, name="web")
    build_story(ledger, clock, ctx, make_policy, name="Api")
    worker = Worker(ledger)
    try:
        odd = 'Jos\u00e9 "\u2028\t\x01\\'
        policy = make_policy(
            subject="CN=Z\u00fcrich\\, HQ, O=\u00dcml\u00e4ut", dns_names=("z.example",)
        )
        ledger.create_certificate(ctx, "zurich", policy, tags={"owner": odd, "t\u00e9": "\x7f"})
        worker.drive("zurich")
        ledger.create_certificate(ctx, "plain", make_policy(), tags={"owner": odd})
        worker.drive("plain")
        ledger.create_certificate(ctx, "plain", make_policy(issuer="Unknown"))
        ledger.cancel_operation(ctx, "plain")
        worker.drive("plain")
    finally:
        worker.close()


def context(now: datetime) -> ReportContext:
    return ReportContext(now, now, None, None, 42, CHECKPOINT)


def test_json_is_the_reference(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    story_ledger(ledger, clock, ctx, make_policy)
    db = caught_up(ledger)
    now = datetime.now(UTC)
    built = build_report("lineage", ViewsAt(db, views_position(db), now), lambda: CHECKPOINT)
    assert built.lines, "SQLite writes the certificates' lines"
    fast, reference = io.StringIO(), io.StringIO()
    write_report(built, "json", fast)
    write_json(built.report, reference)  # built from dicts, on demand
    assert fast.getvalue() == reference.getvalue()
    assert built.summary == built.report["summary"]
    assert built.summary["certificates"] == 4


def test_escaped_json_is_built_from_dicts(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    story_ledger(ledger, clock, ctx, make_policy)
    db = caught_up(ledger)
    part = lineage_sql.lineage_part(db, context(datetime.now(UTC)).report_iso)
    assert part.slow == ["zurich"]
    assert sorted(name for (_, name), _ in part.lines) == ["Api", "plain", "web"]


@pytest.mark.parametrize("parallel_from", [2, 10_000])
def test_two_processes_give_the_same_lines(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory, parallel_from: int
) -> None:
    story_ledger(ledger, clock, ctx, make_policy)
    db = caught_up(ledger)
    at = context(datetime.now(UTC))
    got = lineage_sql.lineage_lines(db, at, jobs=2, parallel_from=parallel_from)
    certs = load_certificates(db)
    entries = list(lineage_entries(certs, at))
    reference = io.StringIO()
    write_json({"certificates": entries}, reference)
    lines = io.StringIO()
    write_json_lines({}, lines, {"certificates": got.lines})
    assert lines.getvalue() == reference.getvalue()
    assert got.summary["versions"] == sum(len(c.versions) for c in certs)
    assert got.timings.db > 0


def test_stored_certificate_json_is_what_the_lines_copy(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    """The lines copy `v_lineage.certificate` as it is: compact, sorted, strings and lists of
    strings only, without the keys the report puts before it."""
    story_ledger(ledger, clock, ctx, make_policy)
    db = caught_up(ledger)
    texts = [r[0] for r in db.execute("SELECT certificate FROM v_lineage") if r[0] is not None]
    assert len(texts) >= 7
    for text in texts:
        value = json.loads(text)
        assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() == text
        assert not {"serial", "x5t"} & value.keys()
        for item in value.values():
            assert isinstance(item, str) or all(isinstance(i, str) for i in item)


def test_a_merged_part_counts_both_processes() -> None:
    def part(seconds: float) -> lineage_sql.Part:
        return lineage_sql.Part(Tally(), [], [], Timings(seconds, 2 * seconds, 3 * seconds))

    merged = part(1.0)
    merged.merge(part(0.5))
    assert merged.timings == Timings(1.5, 3.0, 4.5)
