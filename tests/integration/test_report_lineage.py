"""The lineage report of a hand-built history, field by field, now and --as-of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.application import Ledger
from ledger.bootstrap import open_views
from ledger.database import Db
from ledger.domain.context import Ctx
from ledger.moments import PointInTime
from ledger.pki.issue import add_months
from ledger.reports.asof import views_as_of
from ledger.reports.model import Checkpoint
from ledger.reports.run import ViewsAt, build_report, views_position
from tests.integration.conftest import Clock, PolicyFactory
from tests.support.report_schema import assert_valid
from tests.support.report_story import CA_AGE, Story, build_story

CHECKPOINT = Checkpoint(origin="test", tree_size=0, root_hash="unavailable")
HEX64 = set("0123456789abcdef")


def caught_up(ledger: Ledger) -> Db:
    projector, _ = open_views(ledger)
    projector.catch_up()
    return projector.db


def lineage(views: ViewsAt, names: list[str] | None = None) -> dict[str, Any]:
    return build_report("lineage", views, lambda: CHECKPOINT, names=names).report


def at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def close_to(
    text: str | None, expected: datetime, slack: timedelta = timedelta(minutes=10)
) -> bool:
    return abs(at(text) - expected) <= slack


def test_lineage_of_a_hand_built_history(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    story: Story = build_story(ledger, clock, ctx, make_policy)
    db = caught_up(ledger)
    now = datetime.now(UTC)
    report = lineage(ViewsAt(db, views_position(db), now))
    assert_valid(report)

    assert report["schema_version"] == 1
    assert report["report"] == "lineage"
    assert report["checkpoint"] == {
        "origin": "test",
        "tree_size": 0,
        "root_hash": "unavailable",
        "note": "",
    }
    assert report["log_position"] == ledger.recorder.max_notification_id()
    assert report["summary"] == {
        "certificates": 1,
        "versions": 5,
        "by_status": {"cancelled": 1, "completed": 3, "failed": 1},
        "by_origin": {"merge": 1, "provider": 2, "self": 2},
        "keys_reused": 1,
        "ca_changed": 1,
        "gaps": 1,
        "open_gaps": 0,
        "overlaps": 1,
    }
    (cert,) = report["certificates"]
    assert (cert["name"], cert["state"], cert["current_version"]) == ("web", "active", story.v5)
    v1, v2, failed, cancelled, v5 = cert["versions"]
    assert [v["version"] for v in cert["versions"]] == [
        story.v1,
        story.v2,
        story.failed,
        story.cancelled,
        story.v5,
    ]
    assert [v["status"] for v in cert["versions"]] == [
        "completed",
        "completed",
        "failed",
        "cancelled",
        "completed",
    ]
    assert [v["origin"] for v in cert["versions"]] == [
        "self",
        "self",
        "provider",
        "merge",
        "provider",
    ]
    assert [v["current"] for v in cert["versions"]] == [False, False, False, False, True]
    assert all(v["enabled"] for v in cert["versions"])
    assert all(v["actor"] == "admin" for v in cert["versions"])
    assert [v["sequence"] for v in cert["versions"]] == sorted(
        v["sequence"] for v in cert["versions"]
    )

    # How each came to be: issuer, provider and order.
    assert v1["issuer"] == {"name": "Self", "provider": None, "order_ref": None}
    assert v2["issuer"] == {"name": "Self", "provider": None, "order_ref": None}
    assert failed["issuer"] == {"name": "temp", "provider": None, "order_ref": None}
    assert cancelled["issuer"] == {"name": "Unknown", "provider": None, "order_ref": None}
    assert v5["issuer"]["name"] == "corp"
    assert v5["issuer"]["provider"] == "localca"
    assert v5["issuer"]["order_ref"]

    # Keys: v2 reuses v1's key (the policy asked for it); the others are new.
    assert v2["key"]["id"] == v1["key"]["id"]
    assert v2["key"]["spki_sha256"] == v1["key"]["spki_sha256"]
    assert (v2["key"]["reused"], v2["key"]["reused_from"]) == (True, story.v1)
    for v in (v1, failed, cancelled, v5):
        assert (v["key"]["reused"], v["key"]["reused_from"]) == (False, None)
        assert (v["key"]["type"], v["key"]["curve"], v["key"]["size"]) == ("EC", "P-256", None)
    assert len({v["key"]["id"] for v in (v1, failed, cancelled, v5)}) == 4
    for v in cert["versions"]:
        assert len(v["csr_sha256"]) == 64 and set(v["csr_sha256"]) <= HEX64
    assert len({v["csr_sha256"] for v in cert["versions"]}) == 5

    # Certificates: self-signed ones name themselves; the CA's names the CA.
    assert v1["certificate"]["issuer"] == v1["certificate"]["subject"]
    assert v1["certificate"]["subject"] == "O=Contoso,CN=app.example.com"
    assert v1["certificate"]["dns_names"] == ["app.example.com"]
    assert v1["certificate"]["signature_algorithm"] == "ecdsa-with-SHA256"
    assert v5["certificate"]["issuer"] == "CN=certledger corp CA"
    assert failed["certificate"] is None and cancelled["certificate"] is None
    assert len({v["certificate"]["serial"] for v in (v1, v2, v5)}) == 3

    # What the CA changed: its own certificate expires first, so the validity was cut.
    assert [v["ca_changes"] for v in (v1, v2, failed, cancelled)] == [{}, {}, {}, {}]
    assert list(v5["ca_changes"]) == ["validity"]
    validity = v5["ca_changes"]["validity"]
    assert validity["requested"] == {"months": 12, "days": 365}
    ca_expiry = add_months(now - CA_AGE, 120)
    assert close_to(validity["issued"]["not_after"], ca_expiry, timedelta(days=1))
    assert 85 <= validity["issued"]["days"] <= 95

    # The policy in force, and what changed since the previous version.
    assert v1["policy"]["changes"] is None
    assert v2["policy"]["changes"] == [{"path": "key_props.reuse_key", "from": False, "to": True}]
    assert failed["policy"]["changes"] == [
        {"path": "issuer.name", "from": "Self", "to": "temp"},
        {"path": "key_props.reuse_key", "from": True, "to": False},
    ]
    auto = [{"action": {"action_type": "AutoRenew"}, "trigger": {"lifetime_percentage": 80}}]
    email = [{"action": {"action_type": "EmailContacts"}, "trigger": {"lifetime_percentage": 80}}]
    assert cancelled["policy"]["changes"] == [
        {"path": "issuer.name", "from": "temp", "to": "Unknown"},
        {"path": "lifetime_actions", "from": auto, "to": email},
    ]
    assert v5["policy"]["changes"] == [
        {"path": "issuer.name", "from": "Unknown", "to": "corp"},
        {"path": "lifetime_actions", "from": email, "to": auto},
    ]
    assert len({v["policy"]["hash"] for v in cert["versions"]}) == 5
    assert cert["policy_hash"] == v5["policy"]["hash"]

    # How the unfinished operations ended.
    assert failed["outcome"]["error_code"] == "IssuerNotFound"
    assert "missing or disabled" in failed["outcome"]["message"]
    assert failed["outcome"]["cancellation_requested_at"] is None
    assert cancelled["outcome"]["error_code"] is None
    assert cancelled["outcome"]["message"].startswith("The operation was cancelled")
    assert cancelled["outcome"]["cancellation_requested_at"] is not None
    assert v1["outcome"] is None and v5["outcome"] is None

    # Times: created < promoted; each superseded when the next became current.
    for v in (v1, v2, v5):
        assert v["created_at"] <= v["issued_at"] <= v["promoted_at"]
    for v in (failed, cancelled):
        assert v["promoted_at"] is None and v["issued_at"] is None
    assert v1["superseded_at"] == v2["promoted_at"]
    assert v2["superseded_at"] == v5["promoted_at"]
    assert v5["superseded_at"] is None
    assert (v2["previous_version"], v5["previous_version"]) == (story.v1, story.v2)
    assert close_to(v1["not_before"], now - timedelta(days=730))
    assert close_to(v1["not_after"], add_months(now - timedelta(days=730), 12))
    assert v1["expired_at"] == v1["not_after"]
    assert close_to(v2["not_before"], now - timedelta(days=180))
    assert v2["expired_at"] is None and v5["expired_at"] is None
    assert close_to(v5["not_before"], now - timedelta(days=30))

    # v1 expired ~6 months before v2 began: a gap. v2 was still valid when v5 began.
    (gap,) = cert["gaps"]
    assert gap == {
        "start": v1["not_after"],
        "end": v2["not_before"],
        "days": gap["days"],
        "after_version": story.v1,
        "before_version": story.v2,
        "open": False,
    }
    assert 180 <= gap["days"] <= 190
    (overlap,) = cert["overlaps"]
    assert overlap["versions"] == [story.v2, story.v5]
    assert (overlap["start"], overlap["end"]) == (v5["not_before"], v5["not_after"])


def test_an_open_gap_after_the_last_expiry(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    from ledger.worker import Worker

    worker = Worker(ledger)
    clock.offset = -timedelta(days=400)
    ledger.create_certificate(ctx, "old", make_policy(issuer="Self"))
    version = worker.drive("old").version_of(None).version
    worker.close()
    db = caught_up(ledger)
    now = datetime.now(UTC)
    (cert,) = lineage(ViewsAt(db, views_position(db), now))["certificates"]
    (v,) = cert["versions"]
    assert v["expired_at"] == v["not_after"]
    (gap,) = cert["gaps"]
    assert gap["open"] is True
    assert (gap["start"], gap["after_version"], gap["before_version"]) == (
        v["not_after"],
        version,
        None,
    )
    assert close_to(gap["end"], now, timedelta(seconds=5))
    assert 30 <= gap["days"] <= 40


def test_as_of_agrees_with_the_report_made_at_that_time(
    ledger: Ledger, clock: Clock, ctx: Ctx, make_policy: PolicyFactory
) -> None:
    then: dict[str, Any] = {}

    def report_now(moment: datetime) -> None:
        db = caught_up(ledger)
        then["report"] = lineage(ViewsAt(db, views_position(db), moment))

    story = build_story(ledger, clock, ctx, make_policy, after_v2=report_now)
    db = caught_up(ledger)
    live = then["report"]
    point = PointInTime(until_time=story.after_v2)

    for names in (None, ["web"]):
        memory, position, _ = views_as_of(ledger, db, point, names)
        as_of = lineage(ViewsAt(memory, position, story.after_v2, story.after_v2), names)
        assert_valid(as_of)
        assert as_of["as_of"] == live["report_time"]
        assert as_of["log_position"] == live["log_position"]
        assert as_of["summary"] == live["summary"]
        assert as_of["certificates"] == live["certificates"]

    (cert,) = live["certificates"]
    assert [v["version"] for v in cert["versions"]] == [story.v1, story.v2]
    assert cert["current_version"] == story.v2
    assert cert["overlaps"] == []
    assert len(cert["gaps"]) == 1

    # Now, the same certificate has moved on.
    now = lineage(ViewsAt(db, views_position(db), datetime.now(UTC)))
    assert now["certificates"][0]["current_version"] == story.v5
