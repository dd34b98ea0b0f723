"""The lineage report's JSON lines with most of each version written by SQLite.

Reading 45 columns of every version into Python objects and building a dict per version
cost more than everything else a report does. On SQLite, the query concatenates each
version's JSON around the few values Python still works out (origin, current, key reuse,
gaps and overlaps), so a version costs a handful of Python objects. SQLite's `json_quote`
escapes text exactly as orjson does (a test compares every code point), so the lines are the
bytes `lineage.lineage_report` gives. The stored certificate JSON is copied as it is (the
view writes it compact, with strings and lists of strings only: a test holds it to that),
unless it has an escape, which orjson would write otherwise: such a certificate is built by
`lineage.certificate_entry`. The other stored JSON texts (`ca_changes`, policy changes,
tags) are re-encoded by orjson once per distinct text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ledger.database import DatabaseUrl, Db
from ledger.reports import parallel
from ledger.reports.lineage import Tally, gaps_and_overlaps, lineage_entries
from ledger.reports.model import ReportContext
from ledger.reports.parallel import Stopwatch, Timings
from ledger.reports.source import load_certificates

_Q = "json_quote"
# The stored certificate JSON (`projections.lineage.certificate_facts`: an object of
# strings and lists of strings, written compact) is spliced in as it is unless it has an
# escape, which orjson could write otherwise (it writes non-ASCII text as it is).
_CERT_VERBATIM = "(l.certificate IS NULL OR instr(l.certificate, '\\') = 0)"

_SQL = f"""SELECT v.cert_id, v.version, v.status, v.origin,
 CASE WHEN v.origin = 'pending' THEN v.issuer END,
 CASE WHEN v.promoted_at IS NOT NULL THEN v.nbf END,
 CASE WHEN v.promoted_at IS NOT NULL THEN v.exp END,
 l.spki_sha256, v.key_id, v.key_reused, l.ca_changes, l.policy_changes, v.tags,
 {_CERT_VERBATIM},
 '{{"version":' || {_Q}(v.version) || ',"generation":' || {_Q}(v.generation)
 || ',"sequence":' || {_Q}(v.seq) || ',"status":' || {_Q}(v.status) || ',"origin":',
 ',"enabled":' || CASE WHEN v.enabled THEN 'true' ELSE 'false' END
 || ',"previous_version":' || {_Q}(v.previous_version)
 || ',"created_at":' || {_Q}(v.created) || ',"issued_at":' || {_Q}(l.issued_at)
 || ',"promoted_at":' || {_Q}(v.promoted_at) || ',"superseded_at":' || {_Q}(v.superseded_at)
 || ',"not_before":' || {_Q}(v.nbf) || ',"not_after":' || {_Q}(v.exp)
 || ',"expired_at":' || CASE WHEN v.exp <= ? THEN {_Q}(v.exp) ELSE 'null' END
 || ',"actor":' || {_Q}(v.actor) || ',"request_id":' || {_Q}(v.request_id)
 || ',"key":{{"id":' || {_Q}(v.key_id) || ',"type":' || {_Q}(v.kty)
 || ',"size":' || {_Q}(v.key_size) || ',"curve":' || {_Q}(v.crv)
 || ',"exportable":' || CASE WHEN v.exportable IS NULL THEN 'null'
    WHEN v.exportable THEN 'true' ELSE 'false' END
 || ',"spki_sha256":' || {_Q}(l.spki_sha256),
 '}},"csr_sha256":' || {_Q}(v.csr_sha256) || ',"issuer":{{"name":' || {_Q}(v.issuer)
 || ',"provider":' || {_Q}(v.provider) || ',"order_ref":' || {_Q}(v.order_ref)
 || '}},"certificate":' || CASE WHEN v.nbf IS NULL OR v.exp IS NULL THEN 'null'
    ELSE '{{"serial":' || {_Q}(v.serial) || ',"x5t":' || {_Q}(v.x5t)
    || CASE WHEN l.certificate IS NULL OR l.certificate = '{{}}' THEN '}}'
       ELSE ',' || substr(l.certificate, 2) END END
 || ',"ca_changes":',
 ',"policy":{{"hash":' || {_Q}(v.policy_hash) || ',"changes":',
 '}},"outcome":' || CASE WHEN v.status IN ('failed', 'cancelled', 'deleted') OR l.retries
    THEN '{{"error_code":' || {_Q}(v.error_code) || ',"message":' || {_Q}(l.outcome)
    || ',"retries":' || CASE WHEN l.retries THEN {_Q}(l.retries) ELSE '0' END
    || ',"cancellation_requested_at":' || {_Q}(l.cancel_requested_at) || '}}'
    ELSE 'null' END || ',"tags":'
FROM v_versions v LEFT JOIN v_lineage l ON l.cert_id = v.cert_id AND l.version = v.version
WHERE {{within}}
ORDER BY v.cert_id, v.generation, v.seq"""

_HEAD = "SELECT cert_id, name, state, version, generation, policy_hash, deleted_on FROM v_current"


@dataclass
class LineageLines:
    """The report's summary and its certificates, one JSON text each, in name order."""

    summary: dict[str, Any]
    lines: list[str]
    timings: Timings  # of every process


class _Reencoded:
    """A stored JSON text as orjson writes it (and whether it is truthy), once per text."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, bool]] = {}

    def __call__(self, text: str) -> tuple[str, bool]:
        found = self.seen.get(text)
        if found is None:
            value = orjson.loads(text)
            found = self.seen[text] = (orjson.dumps(value).decode(), bool(value))
        return found


def supported(db: Db) -> bool:
    """SQLite with its JSON functions (built in since 3.38)."""
    if not db.url.is_sqlite:
        return False
    try:
        return db.execute("SELECT json_quote('a')") == [('"a"',)]
    except Exception:  # an SQLite built without JSON
        return False


_QUOTED: dict[str, str] = {}


def _quote(text: str) -> str:
    found = _QUOTED.get(text)
    if found is None:
        found = _QUOTED[text] = orjson.dumps(text).decode()
    return found


@dataclass
class Part:
    """The lines of the certificates whose ids are in [low, high), with their sort keys."""

    tally: Tally
    lines: list[tuple[tuple[str, str], str]]
    slow: list[str]  # names of certificates to build with `lineage.certificate_entry`
    timings: Timings

    def merge(self, other: Part) -> None:
        self.tally.merge(other.tally)
        self.lines += other.lines
        self.slow += other.slow
        self.timings.add(other.timings)


def lineage_part(db: Db, report_time: str, low: str = "", high: str | None = None) -> Part:
    """The certificates whose ids are in [low, high)."""
    part = Part(Tally(), [], [], Timings())
    watch = Stopwatch(part.timings)
    bounds: list[str] = [low]
    within = "cert_id >= ?"
    if high is not None:
        bounds.append(high)
        within += " AND cert_id < ?"
    heads: dict[str, tuple[Any, ...]] = {
        r[0]: r
        for r in watch.query(
            lambda: db.execute(
                f"{_HEAD} WHERE (state <> 'new' OR version IS NOT NULL) AND {within}", bounds
            )
        )
    }
    reencode = _Reencoded()
    sql = _SQL.replace("{within}", within.replace("cert_id", "v.cert_id"))
    rows = watch.query(lambda: db.execute(sql, [report_time, *bounds]))
    count = len(rows)
    index = 0
    while index < count:
        cert_id = rows[index][0]
        end = index + 1
        while end < count and rows[end][0] == cert_id:
            end += 1
        head = heads.get(cert_id)
        if head is not None:
            group = rows[index:end]
            if all(r[13] for r in group):
                line = _certificate_line(head, group, report_time, part.tally, reencode)
                part.lines.append(((head[1].lower(), head[1]), line))
            else:
                part.slow.append(head[1])
        index = end
    watch.stop()
    return part


def lineage_lines(
    db: Db, context: ReportContext, *, jobs: int | None = None, parallel_from: int | None = None
) -> LineageLines:
    """Every certificate's lineage line and the summary, from the live (or rebuilt) views.

    On an SQLite file with more than one CPU, a second process builds the certificates of
    the upper half of the ids while this one builds the lower half.
    """
    report_time = context.report_iso
    split = None
    if (jobs or parallel.default_jobs()) > 1:
        split = parallel.middle_id(
            db, parallel.PARALLEL_FROM if parallel_from is None else parallel_from
        )
    if split is None:
        part = lineage_part(db, report_time)
    else:
        with parallel.Worker() as worker:
            upper = worker.submit(_upper_part, db.url, report_time, split)
            part = lineage_part(db, report_time, high=split)
            part.merge(upper.get())
    watch = Stopwatch(part.timings)
    tally, lines = part.tally, part.lines
    if part.slow:
        certs = load_certificates(db, part.slow)
        for cert, entry in zip(certs, lineage_entries(certs, context), strict=True):
            tally.add_entry(entry)
            lines.append(((cert.name.lower(), cert.name), orjson.dumps(entry).decode()))
    lines.sort(key=_by_name)
    tally.certificates = len(lines)
    watch.stop()
    return LineageLines(tally.summary(), [line for _, line in lines], part.timings)


def _upper_part(url: DatabaseUrl, report_time: str, low: str) -> Part:
    db = url.connect()
    try:
        return lineage_part(db, report_time, low=low)
    finally:
        db.close()


def _by_name(item: tuple[tuple[str, str], str]) -> tuple[str, str]:
    return item[0]


def _certificate_line(
    head: tuple[Any, ...],
    group: list[tuple[Any, ...]],
    report_time: str,
    tally: Tally,
    reencode: _Reencoded,
) -> str:
    by_status, by_origin = tally.by_status, tally.by_origin
    seen, quoted = reencode.seen, _QUOTED
    _, name, state, current_version, generation, policy_hash, deleted_on = head
    if state != "active" or not any(r[1] == current_version for r in group):
        current_version = None
    first: dict[str, str] = {}
    spans: list[tuple[str, str, str]] = []
    parts: list[str] = []
    for (
        _cid,
        version,
        status,
        origin,
        issuer,
        nbf,
        exp,
        spki,
        key_id,
        key_reused,
        ca_text,
        changes_text,
        tags_text,
        _verbatim,
        head1,
        head2,
        middle,
        policy,
        outcome,
    ) in group:
        if origin == "pending":
            origin = "merge" if (issuer or "").lower() == "unknown" else "provider"
        reused_from = (spki and first.get(spki)) or (key_id and first.get(key_id)) or None
        if spki:
            first.setdefault(spki, version)
        if key_id:
            first.setdefault(key_id, version)
        reused = bool(key_reused) or reused_from is not None
        if nbf is not None and exp is not None:
            spans.append((nbf, exp, version))
        ca, changed = ("{}", False) if ca_text is None else (seen.get(ca_text) or reencode(ca_text))
        by_status[status] = by_status.get(status, 0) + 1
        by_origin[origin] = by_origin.get(origin, 0) + 1
        tally.reused += reused
        tally.changed += changed
        parts.append(
            "".join(
                (
                    head1,
                    quoted.get(origin) or _quote(origin),
                    ',"current":true' if version == current_version else ',"current":false',
                    head2,
                    ',"reused":true,"reused_from":' if reused else ',"reused":false,"reused_from":',
                    "null" if reused_from is None else _quote(reused_from),
                    middle,
                    ca,
                    policy,
                    "null"
                    if changes_text is None
                    else (seen.get(changes_text) or reencode(changes_text))[0],
                    outcome,
                    "{}" if tags_text is None else (seen.get(tags_text) or reencode(tags_text))[0],
                    "}",
                )
            )
        )
    tally.versions += len(group)
    spans.sort()
    gaps, overlaps = gaps_and_overlaps(spans, report_time)
    tally.add_spans(gaps, overlaps)
    start = orjson.dumps(
        {
            "name": name,
            "state": state,
            "current_version": current_version,
            "generation": int(generation),
            "policy_hash": policy_hash,
            "deleted_on": deleted_on,
        }
    ).decode()
    return "".join(
        (
            start[:-1],
            ',"versions":[',
            ",".join(parts),
            '],"gaps":',
            orjson.dumps(gaps).decode(),
            ',"overlaps":',
            orjson.dumps(overlaps).decode(),
            "}",
        )
    )
