"""Schemathesis against the served OpenAPI document: over 1,000 generated requests, no 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.api.served import Served

ST = str(Path(sys.executable).with_name("st"))
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def test_generated_requests_never_break_the_server(served: Served, tmp_path: Path) -> None:
    token = served.token("admin")
    report = tmp_path / "report"
    proc = subprocess.run(
        [
            ST,
            "run",
            f"{served.url}/openapi.json",
            "--tls-verify",
            str(served.ca),
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "20",
            "--workers",
            "1",
            "--seed",
            "20261126",
            "--report",
            "har",
            "--report-dir",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    (har,) = report.glob("*.json")
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = [e["response"]["status"] for e in entries]
    assert len(statuses) >= 1000, f"only {len(statuses)} requests were generated"
    assert not [s for s in statuses if s >= 500]
    assert {200, 400, 404} <= set(statuses)
    assert not [line for line in served.log if "Traceback" in line]
