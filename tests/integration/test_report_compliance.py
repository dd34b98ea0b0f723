"""The compliance report over real ledger histories, on both databases, now and --as-of."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.application import Ledger
from ledger.domain.context import Ctx
from ledger.moments import PointInTime
from ledger.reports.asof import views_as_of
from ledger.reports.model import Checkpoint
from ledger.reports.rules import parse_rules
from ledger.reports.run import ViewsAt, build_report, views_position
from tests.integration.conftest import Clock, Openssl, PolicyFactory
from tests.integration.test_report_lineage import caught_up
from tests.support.report_schema import assert_valid
from tests.support.report_story import build_story

CHECKPOINT = Checkpoint(origin="test", tree_size=3, root_hash="unavailable")


def compliance(views: ViewsAt, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    rules_file = parse_rules({"rules": rules or {}})
    return build_report("compliance", views, lambda: CHECKPOINT, rules=rules_file).report


def brief(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (f["certificate"], f["version"], f["rule"], f["evaluated"]) for f in report["findings"]
    )


def import_legacy(ledger: Ledger, ctx: Ctx, openssl: Openssl, tmp: Path, policy: Any) -> str:
    """An RSA-1024 certificate signed with SHA-1 and without a SAN, made by openssl."""
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:1024",
        "-sha1",
        "-days",
        "30",
        "-subj",
        "/CN=legacy",
        "-nodes",
        "-keyout",
        tmp / "legacy.key",
        "-out",
        tmp / "legacy.crt",
    )
    bundle = (tmp / "legacy.key").read_bytes() + (tmp / "legacy.crt").read_bytes()
    # Its policy asks for RSA-2048; the imported certificate is what it is.
    imported = ledger.import_certificate(
        ctx, "legacy", bundle, policy=policy(kty="RSA", subject="CN=legacy", dns_names=())
    )
    return imported.version_of(None).version


def test_findings_at_issuance_and_now(
    ledger: Ledger,
    clock: Clock,
    ctx: Ctx,
    make_policy: PolicyFactory,
    openssl: Openssl,
    tmp_path: Path,
) -> None:
    story = build_story(ledger, clock, ctx, make_policy)
    legacy = import_legacy(ledger, ctx, openssl, tmp_path, make_policy)
    db = caught_up(ledger)
    report = compliance(ViewsAt(db, views_position(db), datetime.now(UTC)))
    assert_valid(report)

    assert report["schema_version"] == 1 and report["report"] == "compliance"
    assert report["checkpoint"]["tree_size"] == 3
    assert brief(report) == sorted(
        [
            # web: v2 reused v1's key and, issued after 2026-03-15, is valid for 365 days.
            ("web", story.v2, "key_reuse", "issuance"),
            ("web", story.v2, "validity_period", "issuance"),
            # legacy: weak, SHA-1, no SAN; still current, so again now; and it expires soon.
            ("legacy", legacy, "min_rsa_key_size", "issuance"),
            ("legacy", legacy, "weak_key", "issuance"),
            ("legacy", legacy, "sha1_signature", "issuance"),
            ("legacy", legacy, "missing_san", "issuance"),
            ("legacy", legacy, "min_rsa_key_size", "report"),
            ("legacy", legacy, "weak_key", "report"),
            ("legacy", legacy, "sha1_signature", "report"),
            ("legacy", legacy, "missing_san", "report"),
            ("legacy", legacy, "expiring", "report"),
        ]
    )
    summary = report["summary"]
    assert summary["certificates"] == 2
    assert summary["versions_evaluated"] == 4  # web v1, v2, v5 and legacy
    assert summary["findings"] == 11
    assert summary["certificates_with_findings"] == 2
    assert summary["by_severity"] == {"critical": 4, "high": 6, "medium": 1, "low": 0, "info": 0}
    assert summary["by_evaluation"] == {"issuance": 6, "report": 5}
    assert summary["by_rule"]["weak_key"] == {
        "title": "No weak keys",
        "source": "cabf-br",
        "severity": "critical",
        "evaluated": 6,
        "violations": 2,
    }
    assert "integrated_ca" not in summary["by_rule"]  # off by default
    sha1 = next(f for f in report["findings"] if f["rule"] == "sha1_signature")
    assert sha1["actual"] == "sha1WithRSAEncryption"
    assert sha1["severity"] == "critical"

    # The same ledger against other rules: only the named CA may issue.
    strict = compliance(
        ViewsAt(db, views_position(db), datetime.now(UTC)),
        {"non_integrated_ca": {"enabled": True, "common_names": ["certledger corp CA"]}},
    )
    by_ca = {(f[0], f[1], f[3]) for f in brief(strict) if f[2] == "non_integrated_ca"}
    assert by_ca == {
        ("web", story.v1, "issuance"),
        ("web", story.v2, "issuance"),
        ("legacy", legacy, "issuance"),
        ("legacy", legacy, "report"),
    }


def test_as_of_agrees_with_the_report_made_at_that_time(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    then: dict[str, Any] = {}

    def report_now(moment: datetime) -> None:
        db = caught_up(ledger)
        then["report"] = compliance(ViewsAt(db, views_position(db), moment))

    story = build_story(ledger, clock, ctx, make_policy, after_v2=report_now)
    db = caught_up(ledger)
    memory, position, _ = views_as_of(ledger, db, PointInTime(until_time=story.after_v2))
    as_of = compliance(ViewsAt(memory, position, story.after_v2, story.after_v2))
    live = then["report"]
    assert as_of["findings"] == live["findings"]
    assert as_of["summary"] == live["summary"]
    assert as_of["log_position"] == live["log_position"]
    # Then v2 was current: checked at issuance and at that time.
    assert brief(live) == [
        ("web", story.v2, "key_reuse", "issuance"),
        ("web", story.v2, "key_reuse", "report"),
        ("web", story.v2, "validity_period", "issuance"),
        ("web", story.v2, "validity_period", "report"),
    ]
    now = compliance(ViewsAt(db, views_position(db), datetime.now(UTC)))
    assert ("web", story.v2, "key_reuse", "report") not in brief(now)
