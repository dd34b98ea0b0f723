"""The lineage report: each certificate's chain of versions, how each came to be, and the
time it was covered by no valid version (gaps) or by more than one (overlaps)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from ledger.reports.model import ReportContext
from ledger.reports.source import CertificateRows, VersionRow

Window = tuple[str, str, str]  # (not before, not after, version): the views' UTC text


class JsonCache:
    """Parses the views' JSON text columns, once per distinct text (the results are shared)."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def __call__(self, text: str | None, default: Any) -> Any:
        if text is None:
            return default
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = orjson.loads(text)
        return found


def _days(start: str, end: str) -> float:
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return round(seconds / 86400, 2)


def windows(cert: CertificateRows) -> list[Window]:
    """The validity windows of the versions that were ever current, by start."""
    return sorted((v.nbf or "", v.exp or "", v.version) for v in cert.versions if v.was_promoted)


def gaps_and_overlaps(
    spans: Sequence[Window], report_time: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Gaps: from the first window's start to `report_time`, time no window covers.
    Overlaps: each pair of windows valid at once, with the shared span."""
    gaps: list[dict[str, Any]] = []
    overlaps: list[dict[str, Any]] = []
    cover_end: str | None = None
    cover_version: str | None = None
    earlier: list[Window] = []
    for start, end, version in spans:
        if cover_end is not None and start > cover_end and cover_end < report_time:
            future = start > report_time
            gap_end = report_time if future else start
            gaps.append(
                {
                    "start": cover_end,
                    "end": gap_end,
                    "days": _days(cover_end, gap_end),
                    "after_version": cover_version,
                    "before_version": None if future else version,
                    "open": future,
                }
            )
        for _, other_end, other in earlier:
            if other_end > start:
                shared_end = min(end, other_end)
                overlaps.append(
                    {
                        "start": start,
                        "end": shared_end,
                        "days": _days(start, shared_end),
                        "versions": [other, version],
                    }
                )
        earlier.append((start, end, version))
        if cover_end is None or end > cover_end:
            cover_end, cover_version = end, version
    if cover_end is not None and cover_end < report_time:
        gaps.append(
            {
                "start": cover_end,
                "end": report_time,
                "days": _days(cover_end, report_time),
                "after_version": cover_version,
                "before_version": None,
                "open": True,
            }
        )
    return gaps, overlaps


def key_reuse(versions: Sequence[VersionRow]) -> dict[str, str]:
    """For each version whose key an earlier version of the same name had: that version."""
    first: dict[str, str] = {}
    reused: dict[str, str] = {}
    for v in versions:
        spki, key_id = v.spki_sha256, v.key_id
        earlier = (spki and first.get(spki)) or (key_id and first.get(key_id))
        if earlier:
            reused[v.version] = earlier
        if spki:
            first.setdefault(spki, v.version)
        if key_id:
            first.setdefault(key_id, v.version)
    return reused


def origin(v: VersionRow) -> str:
    """self, merge, provider or import; for a version without a certificate, its route."""
    if v.origin != "pending":
        return v.origin
    return "merge" if (v.issuer or "").lower() == "unknown" else "provider"


def version_entry(
    v: VersionRow,
    *,
    current: bool,
    reused_from: str | None,
    report_time: str,
    parse: JsonCache,
) -> dict[str, Any]:
    certificate = None
    if v.has_certificate:
        certificate = {"serial": v.serial, "x5t": v.x5t, **parse(v.certificate, {})}
    outcome = None
    if v.status in ("failed", "cancelled", "deleted") or v.retries:
        outcome = {
            "error_code": v.error_code,
            "message": v.outcome,
            "retries": v.retries or 0,
            "cancellation_requested_at": v.cancel_requested_at,
        }
    expired = v.exp if v.exp is not None and v.exp <= report_time else None
    return {
        "version": v.version,
        "generation": v.generation,
        "sequence": v.seq,
        "status": v.status,
        "origin": origin(v),
        "current": current,
        "enabled": bool(v.enabled),
        "previous_version": v.previous_version,
        "created_at": v.created,
        "issued_at": v.issued_at,
        "promoted_at": v.promoted_at,
        "superseded_at": v.superseded_at,
        "not_before": v.nbf,
        "not_after": v.exp,
        "expired_at": expired,
        "actor": v.actor,
        "request_id": v.request_id,
        "key": {
            "id": v.key_id,
            "type": v.kty,
            "size": v.key_size,
            "curve": v.crv,
            "exportable": None if v.exportable is None else bool(v.exportable),
            "spki_sha256": v.spki_sha256,
            "reused": bool(v.key_reused) or reused_from is not None,
            "reused_from": reused_from,
        },
        "csr_sha256": v.csr_sha256,
        "issuer": {
            "name": v.issuer,
            "provider": v.provider,
            "order_ref": v.order_ref,
        },
        "certificate": certificate,
        "ca_changes": parse(v.ca_changes, {}),
        "policy": {"hash": v.policy_hash, "changes": parse(v.policy_changes, None)},
        "outcome": outcome,
        "tags": parse(v.tags, {}),
    }


def certificate_entry(cert: CertificateRows, report_time: str, parse: JsonCache) -> dict[str, Any]:
    reused = key_reuse(cert.versions)
    current = cert.current
    entries = [
        version_entry(
            v,
            current=current is v,
            reused_from=reused.get(v.version),
            report_time=report_time,
            parse=parse,
        )
        for v in cert.versions
    ]
    gaps, overlaps = gaps_and_overlaps(windows(cert), report_time)
    return {
        "name": cert.name,
        "state": cert.state,
        "current_version": current.version if current else None,
        "generation": cert.generation,
        "policy_hash": cert.policy_hash,
        "deleted_on": cert.deleted_on,
        "versions": entries,
        "gaps": gaps,
        "overlaps": overlaps,
    }


def lineage_entries(
    certs: Sequence[CertificateRows], context: ReportContext
) -> Iterator[dict[str, Any]]:
    """Each certificate's lineage, in name order."""
    parse = JsonCache()
    report_time = context.report_iso
    for cert in certs:
        yield certificate_entry(cert, report_time, parse)


class Tally:
    """The summary's counts, added up version by version."""

    def __init__(self) -> None:
        self.certificates = 0
        self.versions = self.reused = self.changed = 0
        self.gaps = self.open_gaps = self.overlaps = 0
        self.by_status: dict[str, int] = {}
        self.by_origin: dict[str, int] = {}

    def merge(self, other: Tally) -> None:
        self.versions += other.versions
        self.reused += other.reused
        self.changed += other.changed
        self.gaps += other.gaps
        self.open_gaps += other.open_gaps
        self.overlaps += other.overlaps
        for mine, theirs in ((self.by_status, other.by_status), (self.by_origin, other.by_origin)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def add_version(self, status: str, origin: str, reused: bool, ca_changed: bool) -> None:
        self.versions += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.by_origin[origin] = self.by_origin.get(origin, 0) + 1
        self.reused += reused
        self.changed += ca_changed

    def add_spans(self, gaps: Sequence[dict[str, Any]], overlaps: Sequence[Any]) -> None:
        self.gaps += len(gaps)
        self.open_gaps += sum(1 for g in gaps if g["open"])
        self.overlaps += len(overlaps)

    def add_entry(self, cert: dict[str, Any]) -> None:
        for v in cert["versions"]:
            self.add_version(v["status"], v["origin"], v["key"]["reused"], bool(v["ca_changes"]))
        self.add_spans(cert["gaps"], cert["overlaps"])

    def summary(self) -> dict[str, Any]:
        return {
            "certificates": self.certificates,
            "versions": self.versions,
            "by_status": dict(sorted(self.by_status.items())),
            "by_origin": dict(sorted(self.by_origin.items())),
            "keys_reused": self.reused,
            "ca_changed": self.changed,
            "gaps": self.gaps,
            "open_gaps": self.open_gaps,
            "overlaps": self.overlaps,
        }


def summarise(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tally = Tally()
    for cert in entries:
        tally.add_entry(cert)
    tally.certificates = len(entries)
    return tally.summary()


def lineage_report(certs: Sequence[CertificateRows], context: ReportContext) -> dict[str, Any]:
    """The whole lineage report as one JSON document."""
    entries = list(lineage_entries(certs, context))
    return {
        **context.header("lineage"),
        "summary": summarise(entries),
        "certificates": entries,
    }
