"""CSV output: one row per version (lineage) or per finding (compliance).

The columns and their order are part of the report's schema (docs/reports.md): new columns
are only ever added at the end. Every row ends with the report time, the log position and
the checkpoint, so a row cut from the file still says what it was computed from.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

LINEAGE_COLUMNS = (
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
)
FINDING_COLUMNS = (
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
)
PROVENANCE_COLUMNS = ("report_time", "log_position", "checkpoint_tree_size", "checkpoint_root_hash")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        if not value:
            return ""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _provenance(report: Mapping[str, Any]) -> list[Any]:
    checkpoint = report["checkpoint"]
    return [
        report["report_time"],
        report["log_position"],
        checkpoint["tree_size"],
        checkpoint["root_hash"],
    ]


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _json_cell(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""


def lineage_rows(report: Mapping[str, Any]) -> Iterator[list[Any]]:
    """One row per version; the csv module writes None as an empty cell."""
    tail = _provenance(report)
    for cert in report["certificates"]:
        name, state = cert["name"], cert["state"]
        for v in cert["versions"]:
            c = v["certificate"] or {}
            key, issuer, outcome = v["key"], v["issuer"], v["outcome"] or {}
            yield [
                name,
                state,
                v["generation"],
                v["sequence"],
                v["version"],
                v["status"],
                v["origin"],
                _flag(v["current"]),
                _flag(v["enabled"]),
                c.get("serial"),
                c.get("x5t"),
                c.get("subject"),
                c.get("issuer"),
                " ".join(c.get("dns_names", ())),
                v["not_before"],
                v["not_after"],
                v["created_at"],
                v["issued_at"],
                v["promoted_at"],
                v["superseded_at"],
                v["expired_at"],
                v["actor"],
                v["request_id"],
                issuer["name"],
                issuer["provider"],
                issuer["order_ref"],
                key["id"],
                key["type"],
                key["size"],
                key["curve"],
                _flag(key["reused"]),
                key["reused_from"],
                key["spki_sha256"],
                v["csr_sha256"],
                c.get("signature_algorithm"),
                v["policy"]["hash"],
                _json_cell(v["policy"]["changes"]),
                _json_cell(v["ca_changes"]),
                outcome.get("error_code"),
                outcome.get("message"),
                outcome.get("retries"),
                *tail,
            ]


def finding_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    tail = _provenance(report)
    return [[_cell(f[c]) for c in FINDING_COLUMNS] + tail for f in report["findings"]]


def write_csv(report: Mapping[str, Any], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    if report["report"] == "lineage":
        writer.writerow(LINEAGE_COLUMNS + PROVENANCE_COLUMNS)
        writer.writerows(lineage_rows(report))
    else:
        writer.writerow(FINDING_COLUMNS + PROVENANCE_COLUMNS)
        writer.writerows(finding_rows(report))
