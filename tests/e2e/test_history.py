"""history, --as-of / --at-position and replay, against a hand-built expectation."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from ledger.cli import EXIT_DRIFT, EXIT_NOT_FOUND
from tests.e2e.conftest import Run, as_json


def moment() -> str:
    time.sleep(0.02)
    now = datetime.now(UTC).isoformat()
    time.sleep(0.02)
    return now


def test_history_and_as_of_agree_with_the_expected_story(cli: Run, tmp_path: Path) -> None:
    t0 = moment()
    cli(
        "cert",
        "create",
        "web",
        "--issuer",
        "Self",
        "--subject",
        "CN=web",
        "--kty",
        "EC",
        "--validity-months",
        "12",
        "--wait",
    )
    v1 = as_json(cli("-o", "json", "cert", "show", "web"))["id"].rsplit("/", 1)[1]
    t1 = moment()
    # A second version under a changed policy.
    cli("cert", "create", "web", "--validity-months", "6", "--wait")
    v2 = as_json(cli("-o", "json", "cert", "show", "web"))["id"].rsplit("/", 1)[1]
    t2 = moment()
    cli("cert", "update", "web", "--disable")
    t3 = moment()
    # A third attempt through an issuer that disappears: the operation fails.
    cli("issuer", "create", "corp", "--provider", "LocalCA")
    cli("cert", "create", "web", "--issuer", "corp")
    cli("issuer", "delete", "corp")
    cli("worker", "--once")
    failed = as_json(cli("-o", "json", "cert", "pending", "web"))
    assert failed["status"] == "failed" and failed["error"]["code"] == "IssuerNotFound"
    t4 = moment()

    story = as_json(cli("-o", "json", "history", "web"))["value"]
    expected = [
        ("Registered", ""),
        ("PolicyReplaced", ""),
        ("OperationOpened", v1),
        ("KeyPairCreated", v1),
        ("CsrIssued", v1),
        ("X509Merged", v1),
        ("VersionPromoted", v1),
        ("PolicyReplaced", ""),
        ("OperationOpened", v2),
        ("KeyPairCreated", v2),
        ("CsrIssued", v2),
        ("X509Merged", v2),
        ("VersionPromoted", v2),
        ("AttributesUpdated", v2),
        ("PolicyReplaced", ""),
        ("OperationOpened", "*"),
        ("KeyPairCreated", "*"),
        ("CsrIssued", "*"),
        ("OperationFailed", "*"),
    ]
    assert [
        (e["event"], e["version"] if e["version"] in ("", v1, v2) else "*") for e in story
    ] == expected
    assert [e["actor"] for e in story if e["event"] == "X509Merged"] == ["certledger-worker"] * 2
    assert story[-1]["facts"]["code"] == "IssuerNotFound"
    assert story[13]["facts"]["enabled"] is False
    positions = [e["position"] for e in story]
    assert positions == sorted(positions)

    # Filters: by version, and by time range.
    assert [
        e["event"] for e in as_json(cli("-o", "json", "history", "web", "--version", v1))["value"]
    ] == ["OperationOpened", "KeyPairCreated", "CsrIssued", "X509Merged", "VersionPromoted"]
    window = as_json(cli("-o", "json", "history", "web", "--since", t1, "--as-of", t2))["value"]
    assert [e["event"] for e in window] == [name for name, _ in expected[7:13]]

    # The certificate as it stood at each moment.
    cli("cert", "show", "web", "--as-of", t0, expect=EXIT_NOT_FOUND)
    at1 = as_json(cli("-o", "json", "cert", "show", "web", "--as-of", t1))
    assert at1["id"].endswith(v1) and at1["policy"]["x509_props"]["validity_months"] == 12
    at2 = as_json(cli("-o", "json", "cert", "show", "web", "--as-of", t2))
    assert at2["id"].endswith(v2) and at2["attributes"]["enabled"] is True
    assert at2["policy"]["x509_props"]["validity_months"] == 6
    at3 = as_json(cli("-o", "json", "cert", "show", "web", "--as-of", t3))
    assert at3["id"].endswith(v2) and at3["attributes"]["enabled"] is False
    at4 = as_json(cli("-o", "json", "cert", "show", "web", "--as-of", t4))
    assert at4["id"].endswith(v2) and at4["policy"]["issuer"]["name"] == "corp"
    versions_at1 = as_json(cli("-o", "json", "cert", "versions", "web", "--as-of", t1))["value"]
    assert [v["id"].rsplit("/", 1)[1] for v in versions_at1] == [v1]
    key_at1 = as_json(cli("-o", "json", "key", "show", "web", "--as-of", t1))
    assert key_at1["key"]["kid"].endswith(v1)
    secret_at3 = as_json(cli("-o", "json", "secret", "show", "web", "--as-of", t3))
    assert secret_at3["attributes"]["enabled"] is False and "value" not in secret_at3
    # --at-position agrees with --as-of at the same event.
    promoted_v1 = next(e for e in story if e["event"] == "VersionPromoted")["position"]
    by_position = as_json(
        cli("-o", "json", "cert", "show", "web", "--at-position", str(promoted_v1))
    )
    assert by_position == at1
    history_at = as_json(cli("-o", "json", "history", "web", "--at-position", str(promoted_v1)))[
        "value"
    ]
    assert [e["event"] for e in history_at] == [name for name, _ in expected[:7]]

    # CSV for scripts: one row per event with a header.
    rows = list(csv.DictReader(io.StringIO(cli("-o", "csv", "history", "web").stdout)))
    assert [r["event"] for r in rows] == [name for name, _ in expected]


def test_replay_reports_drift_by_certificate_and_field(cli: Run, home: Path) -> None:
    cli("cert", "create", "web", "--issuer", "Self", "--subject", "CN=web", "--wait")
    clean = cli("replay")
    assert "every view agrees" in clean.stderr
    # Alter a view behind the ledger's back.
    db = sqlite3.connect(home / "ledger.db")
    db.execute("UPDATE v_versions SET x5t = 'forged' WHERE status = 'completed'")
    db.commit()
    db.close()
    drift = cli("-o", "json", "replay", expect=EXIT_DRIFT)
    found = as_json(drift)["value"]
    assert [(d["certificate"], d["view"], d["field"], d["in_view"]) for d in found] == [
        ("web", "versions", "x5t", "forged")
    ]
    cli("projections", "rebuild", "versions")
    assert "every view agrees" in cli("replay").stderr
    too_many = cli("projections", "rebuild", "--jobs", "17", expect=2)
    assert "--jobs" in too_many.stderr and "1<=x<=16" in too_many.stderr


def test_bulk_import_of_a_folder(cli: Run, tmp_path: Path) -> None:
    import subprocess

    folder = tmp_path / "exported"
    folder.mkdir()
    for name in ("alpha", "beta"):
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                f"/CN={name}.example",
                "-keyout",
                str(tmp_path / "k.pem"),
                "-out",
                str(tmp_path / "c.pem"),
                "-days",
                "30",
            ],
            check=True,
            capture_output=True,
        )
        (folder / f"{name}.pem").write_bytes(
            (tmp_path / "k.pem").read_bytes() + (tmp_path / "c.pem").read_bytes()
        )
    (folder / "broken.pem").write_text("not a certificate")
    result = cli("cert", "import-dir", str(folder), expect=2)
    assert "imported 2 of 3" in result.stderr and "broken.pem" in result.stderr
    listed = as_json(cli("-o", "json", "cert", "list"))["value"]
    assert [item["id"].rsplit("/", 1)[1] for item in listed] == ["alpha", "beta"]
