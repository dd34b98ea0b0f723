"""HTML output: one self-contained page (no scripts, no external resources): the checkpoint,
summary counts, the SVG timeline, then the findings (compliance) or the versions (lineage)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any, TextIO

from ledger.reports.rules import SEVERITIES

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px 32px;
color:#1d1d1f;font-size:14px;line-height:1.4}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;margin:2px 0}.meta code{font-size:12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px;background:#fafafa}
.card b{display:block;font-size:22px}.card span{color:#555;font-size:12px}
.card.critical b{color:#b00020}.card.high b{color:#d9480f}.card.medium b{color:#b08900}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0 12px}
th,td{border:1px solid #e1e1e1;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}
tr:nth-child(even) td{background:#fbfbfc}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-weight:600;font-size:11px}
.sev.critical{background:#b00020}.sev.high{background:#d9480f}.sev.medium{background:#b08900}
.sev.low{background:#1971c2}.sev.info{background:#868e96}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px}
.note{color:#666;font-size:12px}.timeline{overflow-x:auto}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return escape(json.dumps(value, ensure_ascii=False))
    return escape(str(value))


def _short(text: str | None, size: int = 12) -> str:
    if not text:
        return ""
    return f'<span class="mono" title="{escape(text)}">{escape(text[:size])}</span>'


def _time(text: str | None) -> str:
    """The views' UTC text, shortened to the minute for a table."""
    if not text:
        return ""
    return f'<span title="{escape(text)}">{escape(text[:16].replace("T", " "))}</span>'


def _badge(severity: str) -> str:
    return f'<span class="sev {escape(severity)}">{escape(severity)}</span>'


def _cards(items: Iterable[tuple[str, Any, str]]) -> str:
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card {cls}"><b>{_e(value)}</b><span>{escape(label)}</span></div>'
            for label, value, cls in items
        )
        + "</div>"
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _header(report: Mapping[str, Any], title: str) -> str:
    cp = report["checkpoint"]
    as_of = f" &middot; as of <b>{_e(report['as_of'])}</b>" if report["as_of"] else ""
    position = (
        f" &middot; up to log position {_e(report['at_position'])}" if report["at_position"] else ""
    )
    return (
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta">Report time <b>{_e(report["report_time"])}</b>{as_of}{position}'
        f" &middot; generated {_e(report['generated_at'])} &middot; schema version"
        f" {_e(report['schema_version'])}</p>"
        f'<p class="meta" id="checkpoint">Computed from the views at log position'
        f" <b>{_e(report['log_position'])}</b>; audit checkpoint: origin"
        f" <code>{_e(cp['origin'])}</code>, tree size <b>{_e(cp['tree_size'])}</b>, root hash"
        f" <code>{_e(cp['root_hash'])}</code></p>"
    )


def _timeline(svg: str, shown: int, total: int) -> str:
    if not svg:
        return '<h2>Timeline</h2><p class="note">No version has been issued yet.</p>'
    note = f"Showing {shown} of {total} certificates." if shown < total else ""
    return (
        f'<h2>Timeline</h2><div class="timeline">{svg}</div>'
        f'<p class="note">Each bar is a version from notBefore to notAfter; the black tick marks'
        f" its expiry. {note}</p>"
    )


def _compliance(report: Mapping[str, Any]) -> tuple[str, str]:
    s = report["summary"]
    cards = _cards(
        [
            ("certificates", s["certificates"], ""),
            ("versions evaluated", s["versions_evaluated"], ""),
            ("findings", s["findings"], ""),
            ("certificates with findings", s["certificates_with_findings"], ""),
            *((sev, s["by_severity"][sev], sev) for sev in SEVERITIES),
        ]
    )
    rules = _table(
        ["rule", "title", "source", "severity", "evaluated", "violations"],
        (
            [
                f'<span class="mono">{escape(rule_id)}</span>',
                escape(counts["title"]),
                escape(counts["source"]),
                _badge(counts["severity"]),
                _e(counts["evaluated"]),
                _e(counts["violations"]),
            ]
            for rule_id, counts in s["by_rule"].items()
        ),
    )
    order = {sev: i for i, sev in enumerate(SEVERITIES)}
    findings = sorted(
        report["findings"], key=lambda f: (order[f["severity"]], f["certificate"], f["rule"])
    )
    table = _table(
        ["severity", "certificate", "version", "rule", "evaluated", "at", "finding", "expected"],
        (
            [
                _badge(f["severity"]),
                escape(f["certificate"]),
                _short(f["version"]),
                f'<span title="{escape(f["title"])}">{escape(f["rule"])}</span>',
                escape(f["evaluated"]),
                _time(f["at"]),
                escape(f["message"]),
                _e(f["expected"]),
            ]
            for f in findings
        ),
    )
    body = f"<h2>Rules</h2>{rules}<h2>Findings</h2>" + (
        table if findings else '<p class="note">No findings.</p>'
    )
    return cards, body


def _changes(changes: list[dict[str, Any]] | None) -> str:
    if changes is None:
        return '<span class="note">first</span>'
    if not changes:
        return ""
    return "<br>".join(
        f"{escape(c['path'])}: {_e(c['from'])} &rarr; {_e(c['to'])}" for c in changes
    )


def _ca_changes(changes: Mapping[str, Any]) -> str:
    return "<br>".join(
        f"{escape(aspect)}: {_e(c.get('requested'))} &rarr; {_e(c.get('issued'))}"
        for aspect, c in changes.items()
    )


def _lineage(report: Mapping[str, Any]) -> tuple[str, str]:
    s = report["summary"]
    cards = _cards(
        [
            ("certificates", s["certificates"], ""),
            ("versions", s["versions"], ""),
            *((f"{status}", n, "") for status, n in s["by_status"].items()),
            ("keys reused", s["keys_reused"], "medium" if s["keys_reused"] else ""),
            ("changed by the CA", s["ca_changed"], ""),
            ("gaps", s["gaps"], "high" if s["gaps"] else ""),
            ("overlaps", s["overlaps"], ""),
        ]
    )
    parts = ["<h2>Lineage</h2>"]
    for cert in report["certificates"]:
        parts.append(
            f'<h3>{escape(cert["name"])} <span class="note">({escape(cert["state"])},'
            f" current {_short(cert['current_version'])})</span></h3>"
        )
        rows = []
        for v in cert["versions"]:
            key = v["key"]
            key_text = " ".join(
                str(x) for x in (key["type"], key["size"] or key["curve"] or "") if x
            )
            if key["reused"]:
                key_text += f" &middot; reused from {_short(key['reused_from']) or 'earlier'}"
            issuer = v["issuer"]
            source = escape(issuer["name"] or "")
            if issuer["provider"]:
                source += f" via {escape(issuer['provider'])} ({_short(issuer['order_ref'], 16)})"
            outcome = v["outcome"] or {}
            status = escape(v["status"]) + (" &#9733;" if v["current"] else "")
            if outcome.get("message"):
                status += f'<br><span class="note">{escape(str(outcome["message"]))}</span>'
            rows.append(
                [
                    _short(v["version"]),
                    status,
                    escape(v["origin"]),
                    source,
                    key_text,
                    _time(v["created_at"]),
                    _time(v["promoted_at"]),
                    _time(v["superseded_at"]),
                    _time(v["not_before"]),
                    _time(v["not_after"]),
                    _e(v["enabled"]),
                    _ca_changes(v["ca_changes"]),
                    _short(v["policy"]["hash"]) + "<br>" + _changes(v["policy"]["changes"]),
                    escape(v["actor"] or ""),
                ]
            )
        parts.append(
            _table(
                [
                    "version",
                    "status",
                    "origin",
                    "issuer",
                    "key",
                    "created",
                    "promoted",
                    "superseded",
                    "not before",
                    "not after",
                    "enabled",
                    "CA changed",
                    "policy",
                    "actor",
                ],
                rows,
            )
        )
        for gap in cert["gaps"]:
            parts.append(
                f'<p class="note">Gap: {_time(gap["start"])} to {_time(gap["end"])}'
                f" ({gap['days']} days{', still open' if gap['open'] else ''})</p>"
            )
        for overlap in cert["overlaps"]:
            a, b = overlap["versions"]
            parts.append(
                f'<p class="note">Overlap of {_short(a)} and {_short(b)}:'
                f" {_time(overlap['start'])} to {_time(overlap['end'])}"
                f" ({overlap['days']} days)</p>"
            )
    return cards, "".join(parts)


def write_html(
    report: Mapping[str, Any], out: TextIO, *, timeline: str, shown: int, total: int
) -> None:
    kind = report["report"]
    title = f"certledger {kind} report"
    cards, body = _compliance(report) if kind == "compliance" else _lineage(report)
    out.write(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} &mdash; {_e(report['report_time'][:19])}</title>"
        f"<style>{STYLE}</style></head><body>"
    )
    out.write(_header(report, title))
    out.write(f"<h2>Summary</h2>{cards}")
    out.write(_timeline(timeline, shown, total))
    out.write(body)
    out.write("</body></html>\n")
