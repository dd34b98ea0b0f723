"""`certledger report`: formats, stable CSV columns, the HTML page in a real browser, --as-of."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import open_ledger
from ledger.cli import EXIT_FORBIDDEN, EXIT_NOT_FOUND, EXIT_USAGE
from ledger.domain.context import Ctx
from ledger.settings import Settings
from tests.e2e.conftest import Run
from tests.integration.conftest import Clock, build_policy
from tests.support.chromium import dump_dom, screenshot
from tests.support.report_schema import assert_valid
from tests.support.report_story import Story, build_story

DOCS = Path(__file__).resolve().parents[2] / "docs"

# The documented columns (docs/reports.md), in order: changing them breaks readers of the files.
LINEAGE_COLUMNS = [
    "certificate",
    "certificate_state",
    "generation",
    "sequence",
    "version",
    "status",
    "origin",
    "current",
    "enabled",
    "serial",
    "x5t",
    "subject",
    "issuer_dn",
    "dns_names",
    "not_before",
    "not_after",
    "created_at",
    "issued_at",
    "promoted_at",
    "superseded_at",
    "expired_at",
    "requester",
    "request_id",
    "issuer_name",
    "provider",
    "order_ref",
    "key_id",
    "key_type",
    "key_size",
    "key_curve",
    "key_reused",
    "key_reused_from",
    "spki_sha256",
    "csr_sha256",
    "signature_algorithm",
    "policy_hash",
    "policy_changes",
    "ca_changes",
    "error_code",
    "outcome",
    "retries",
    "report_time",
    "log_position",
    "checkpoint_tree_size",
    "checkpoint_root_hash",
]
FINDING_COLUMNS = [
    "certificate",
    "version",
    "serial",
    "rule",
    "title",
    "source",
    "severity",
    "evaluated",
    "at",
    "message",
    "expected",
    "actual",
    "report_time",
    "log_position",
    "checkpoint_tree_size",
    "checkpoint_root_hash",
]


@dataclass(frozen=True)
class Built:
    story: Story
    events: int
    then: Path  # the lineage JSON written by the CLI right after v2 became current


@pytest.fixture
def built(home: Path, cli: Run, tmp_path: Path) -> Iterator[Built]:
    """The hand-built history of `web`, written through the ledger on the CLI's home."""
    clock = Clock()
    ledger = open_ledger(Settings.resolve(home=home, environ={}), clock=clock)
    then = tmp_path / "then.json"

    def report_then(_: Any) -> None:
        cli("report", "lineage", "web", "--format", "json", "--out", str(then))

    try:
        story = build_story(ledger, clock, Ctx("admin"), build_policy, after_v2=report_then)
        ledger.create_certificate(Ctx("admin"), "other", build_policy(issuer="Unknown"))
        events = int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()
    yield Built(story, events, then)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_lineage_csv_has_the_documented_columns(cli: Run, built: Built) -> None:
    text = cli("report", "lineage", "--format", "csv").stdout
    header = next(csv.reader(io.StringIO(text)))
    assert header == LINEAGE_COLUMNS
    documented = (DOCS / "reports.md").read_text().split("## CSV columns", 1)[1]
    positions = [documented.find(f"| `{c}` |") for c in LINEAGE_COLUMNS]
    assert -1 not in positions and positions == sorted(positions), "docs/reports.md columns"

    table = rows(text)
    story = built.story
    web = [r for r in table if r["certificate"] == "web"]
    assert [r["version"] for r in web] == [
        story.v1,
        story.v2,
        story.failed,
        story.cancelled,
        story.v5,
    ]
    assert [r["status"] for r in web] == [
        "completed",
        "completed",
        "failed",
        "cancelled",
        "completed",
    ]
    assert [r["current"] for r in web] == ["false", "false", "false", "false", "true"]
    assert (web[1]["key_reused"], web[1]["key_reused_from"]) == ("true", story.v1)
    assert web[4]["provider"] == "localca" and web[4]["order_ref"]
    assert json.loads(web[4]["ca_changes"])["validity"]["requested"]["months"] == 12
    assert json.loads(web[1]["policy_changes"]) == [
        {"path": "key_props.reuse_key", "from": False, "to": True}
    ]
    assert web[2]["error_code"] == "IssuerNotFound"
    assert web[0]["expired_at"] == web[0]["not_after"] != ""
    assert web[0]["dns_names"] == "app.example.com"
    assert all(r["requester"] == "admin" for r in web)
    (other,) = [r for r in table if r["certificate"] == "other"]
    assert (other["status"], other["origin"], other["serial"]) == ("pending", "merge", "")
    # Every row says what it was computed from.
    assert {r["checkpoint_tree_size"] for r in table} == {str(built.events)}
    signed = cli("audit", "export-checkpoint").stdout.splitlines()
    assert {r["checkpoint_root_hash"] for r in table} == {signed[2]}
    assert {r["log_position"] for r in table} == {str(built.events)}


def test_compliance_csv_and_json(cli: Run, built: Built, tmp_path: Path) -> None:
    text = cli("report", "compliance", "--format", "csv").stdout
    assert next(csv.reader(io.StringIO(text))) == FINDING_COLUMNS
    table = rows(text)
    assert {(r["version"], r["rule"], r["evaluated"]) for r in table} == {
        (built.story.v2, "key_reuse", "issuance"),
        (built.story.v2, "validity_period", "issuance"),
    }
    out = tmp_path / "compliance.json"
    result = cli("report", "compliance", "--format", "json", "--out", str(out))
    assert result.stdout == ""
    assert f"2 finding(s) -> {out}" in result.stderr
    report = json.loads(out.read_text())
    assert_valid(report)
    assert report["schema_version"] == 1
    # The report is tied to the log's signed checkpoint covering every event.
    note = cli("audit", "export-checkpoint").stdout
    origin, size, root = note.splitlines()[:3]
    assert report["checkpoint"] == {
        "origin": origin,
        "tree_size": built.events,
        "root_hash": root,
        "note": note,
    }
    assert int(size) == built.events
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [
        ("validity_period", "high"),
        ("key_reuse", "medium"),
    ]
    assert report["rules"]["rules"]["expiring"]["days"] == 30


def test_as_of_gives_the_report_made_then(cli: Run, built: Built) -> None:
    then = json.loads(built.then.read_text())
    # The ledger's first report signed its first checkpoint (storing the log's key event):
    # the views it read stand where that checkpoint does.
    assert then["log_position"] == then["checkpoint"]["tree_size"]
    as_of = then["report_time"]  # the moment that report was made
    result = cli("report", "lineage", "web", "--as-of", as_of, "--format", "json")
    past = json.loads(result.stdout)
    assert_valid(past)
    assert past["as_of"] == then["report_time"]
    assert past["certificates"] == then["certificates"]
    assert past["summary"] == then["summary"]
    assert [v["version"] for v in past["certificates"][0]["versions"]] == [
        built.story.v1,
        built.story.v2,
    ]
    # The same point named by its log position.
    position = cli("report", "lineage", "web", "--at-position", str(then["log_position"]))
    by_position = json.loads(position.stdout)
    assert by_position["at_position"] == then["log_position"]
    assert by_position["certificates"] == then["certificates"]
    # The whole ledger as of then has only `web` (`other` came later).
    everything = json.loads(cli("report", "lineage", "--as-of", as_of).stdout)
    assert [c["name"] for c in everything["certificates"]] == ["web"]
    assert everything["certificates"] == then["certificates"]


def test_the_html_report_renders_in_chromium(cli: Run, built: Built, tmp_path: Path) -> None:
    page = tmp_path / "compliance.html"
    cli("report", "compliance", "--format", "html", "--out", str(page))
    html = page.read_text()
    # Self-contained: no scripts and nothing fetched from elsewhere.
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)

    png = tmp_path / "compliance.png"
    screenshot(page, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

    dom = dump_dom(page)
    assert "<title>certledger compliance report" in dom
    for heading in ("Summary", "Timeline", "Rules", "Findings"):
        assert f"<h2>{heading}</h2>" in dom
    assert "tree size <b>" + str(built.events) + "</b>" in dom
    assert dom.count('class="version ') == 3  # web's three certificates
    assert dom.count('class="gap"') == 1 and dom.count('class="overlap"') == 1
    assert dom.count('class="sev high"') >= 1 and "key_reuse" in dom

    lineage = tmp_path / "lineage.html"
    cli("report", "lineage", "--format", "html", "--out", str(lineage))
    dom = dump_dom(lineage)
    assert "<title>certledger lineage report" in dom
    assert "<h2>Lineage</h2>" in dom
    for version in (built.story.v1, built.story.v5, built.story.failed):
        assert version[:12] in dom
    assert "reused from" in dom and "IssuerNotFound" not in dom  # the message, not the code
    assert "issuer 'temp' is missing or disabled" in dom.replace("&#x27;", "'")


def test_errors(cli: Run, built: Built, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[rules.expiring]\ndays = 'soon'\n")
    result = cli("report", "compliance", "--rules", str(bad), expect=EXIT_USAGE)
    assert f"error: rules file {bad}: rules.expiring.days:" in result.stderr
    result = cli("report", "lineage", "nosuch", expect=EXIT_NOT_FOUND)
    assert "'nosuch' not found" in result.stderr
    cli("--principal", "mallory", "report", "compliance", expect=EXIT_FORBIDDEN)
    cli("--principal", "mallory", "report", "lineage", "web", expect=EXIT_FORBIDDEN)
    cli("access", "grant", "auditor", "list", "get")
    cli("--principal", "auditor", "report", "compliance", "--format", "csv")


def test_the_subprocess_entry_point(home: Path, built: Built) -> None:
    beside = Path(sys.executable).parent / "certledger"
    exe = str(beside) if beside.exists() else shutil.which("certledger")
    assert exe is not None, "the certledger console script is not installed"
    proc = subprocess.run(
        [exe, "--home", str(home), "report", "lineage", "web", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(rows(proc.stdout)) == 5
