"""An inline SVG timeline: each certificate's versions over time, with expiry and gaps marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from ledger.reports.lineage import gaps_and_overlaps, windows
from ledger.reports.model import iso_text
from ledger.reports.source import CertificateRows

LABEL_WIDTH = 230
LANE_HEIGHT = 12
ROW_PADDING = 8
AXIS_HEIGHT = 44
LEGEND_HEIGHT = 34
COLOURS = {"current": "#2f7d32", "superseded": "#5472d3", "expired": "#a7a7a7"}


@dataclass(frozen=True)
class Bar:
    version: str
    start: datetime
    end: datetime
    kind: str  # current, superseded or expired
    lane: int


@dataclass(frozen=True)
class Row:
    name: str
    bars: list[Bar]
    lanes: int
    gaps: list[tuple[datetime, datetime, bool]]  # (start, end, open)
    overlaps: list[tuple[datetime, datetime]]

    @property
    def height(self) -> int:
        return max(1, self.lanes) * LANE_HEIGHT + ROW_PADDING


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def timeline_rows(certs: Sequence[CertificateRows], report_time: datetime) -> list[Row]:
    report_iso = iso_text(report_time)
    rows = []
    for cert in certs:
        spans = windows(cert)
        if not spans:
            continue
        current = cert.current
        lane_ends: list[str] = []
        bars = []
        for start, end, version in spans:
            lane = next((i for i, e in enumerate(lane_ends) if e <= start), len(lane_ends))
            if lane == len(lane_ends):
                lane_ends.append(end)
            else:
                lane_ends[lane] = end
            if end <= report_iso:
                kind = "expired"
            elif current is not None and version == current.version:
                kind = "current"
            else:
                kind = "superseded"
            bars.append(Bar(version, _dt(start), _dt(end), kind, lane))
        gaps, overlaps = gaps_and_overlaps(spans, report_iso)
        rows.append(
            Row(
                cert.name,
                bars,
                len(lane_ends),
                [(_dt(g["start"]), _dt(g["end"]), bool(g["open"])) for g in gaps],
                [(_dt(o["start"]), _dt(o["end"])) for o in overlaps],
            )
        )
    return rows


def _ticks(t0: datetime, t1: datetime) -> list[tuple[datetime, str]]:
    days = (t1 - t0).days
    ticks: list[tuple[datetime, str]] = []
    if days > 3 * 365:
        step = max(1, days // 365 // 10)
        year = t0.year + 1
        while (moment := datetime(year, 1, 1, tzinfo=UTC)) < t1:
            ticks.append((moment, str(year)))
            year += step
        return ticks
    if days > 60:
        step = 1 if days <= 500 else 3
        year, month = t0.year, t0.month
        while True:
            month += step
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
            moment = datetime(year, month, 1, tzinfo=UTC)
            if moment >= t1:
                return ticks
            ticks.append((moment, moment.strftime("%Y-%m")))
    moment = datetime(t0.year, t0.month, t0.day, tzinfo=UTC) + timedelta(days=1)
    step_days = max(1, days // 10)
    while moment < t1:
        ticks.append((moment, moment.strftime("%m-%d")))
        moment += timedelta(days=step_days)
    return ticks


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def timeline_svg(
    certs: Sequence[CertificateRows],
    report_time: datetime,
    *,
    limit: int = 200,
    width: int = 1180,
) -> tuple[str, int, int]:
    """The SVG text, and how many certificates it shows out of how many have versions."""
    rows = timeline_rows(certs, report_time)
    shown = rows[:limit]
    if not shown:
        return "", 0, 0
    starts = [b.start for r in shown for b in r.bars]
    ends = [b.end for r in shown for b in r.bars] + [report_time]
    t0, t1 = min(starts), max(ends)
    pad = max((t1 - t0) * 0.02, timedelta(hours=1))
    t0, t1 = t0 - pad, t1 + pad
    plot = width - LABEL_WIDTH - 16
    total = (t1 - t0).total_seconds()

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + (moment - t0).total_seconds() / total * plot, 1)

    height = AXIS_HEIGHT + sum(r.height for r in shown) + LEGEND_HEIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of versions"'
        ' font-family="system-ui, sans-serif" font-size="11">',
        '<defs><pattern id="gap" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde2e1"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#d62828" stroke-width="2.5"/></pattern></defs>',
    ]
    bottom = height - LEGEND_HEIGHT
    for moment, label in _ticks(t0, t1):
        tx = x(moment)
        out.append(
            f'<line x1="{tx}" y1="{AXIS_HEIGHT - 6}" x2="{tx}" y2="{bottom}" stroke="#e3e3e3"/>'
            f'<text x="{tx}" y="{AXIS_HEIGHT - 10}" text-anchor="middle" fill="#555">{label}</text>'
        )
    y = AXIS_HEIGHT
    for index, row in enumerate(shown):
        if index % 2:
            out.append(
                f'<rect x="0" y="{y}" width="{width}" height="{row.height}" fill="#f7f7f9"/>'
            )
        name = row.name if len(row.name) <= 32 else row.name[:31] + "…"
        out.append(f'<text x="6" y="{y + row.height / 2 + 4}" fill="#222">{escape(name)}</text>')
        for start, end, is_open in row.gaps:
            gx, gw = x(start), max(x(end) - x(start), 2)
            what = "open gap" if is_open else "gap"
            days = round((end - start).total_seconds() / 86400, 1)
            out.append(
                f'<rect class="gap" x="{gx}" y="{y + 2}" width="{gw}" height="{row.height - 4}"'
                f' fill="url(#gap)" stroke="#d62828"><title>{what}: {_when(start)} to'
                f" {_when(end)} ({days} days without a valid version)</title></rect>"
            )
        for start, end in row.overlaps:
            ox, ow = x(start), max(x(end) - x(start), 2)
            out.append(
                f'<rect class="overlap" x="{ox}" y="{y + 1}" width="{ow}" height="3"'
                f' fill="#f59f00"><title>overlap: {_when(start)} to {_when(end)}</title></rect>'
            )
        for bar in row.bars:
            bx, bw = x(bar.start), max(x(bar.end) - x(bar.start), 2)
            by = y + ROW_PADDING / 2 + bar.lane * LANE_HEIGHT
            out.append(
                f'<rect class="version {bar.kind}" x="{bx}" y="{by}" width="{bw}"'
                f' height="{LANE_HEIGHT - 3}" rx="2" fill="{COLOURS[bar.kind]}">'
                f"<title>{escape(bar.version)} ({bar.kind}): {_when(bar.start)} to"
                f" {_when(bar.end)}</title></rect>"
                f'<line class="expiry" x1="{bx + bw}" y1="{by - 1}" x2="{bx + bw}"'
                f' y2="{by + LANE_HEIGHT - 2}" stroke="#111" stroke-width="2"/>'
            )
        y += row.height
    rx = x(report_time)
    out.append(
        f'<line x1="{rx}" y1="16" x2="{rx}" y2="{bottom}" stroke="#c2185b"'
        ' stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{rx + 4}" y="12" fill="#c2185b">report time</text>'
    )
    legend = [
        ("current", COLOURS["current"]),
        ("superseded, still valid", COLOURS["superseded"]),
        ("expired", COLOURS["expired"]),
        ("overlap", "#f59f00"),
    ]
    lx, ly = 6, bottom + 14
    for label, colour in legend:
        out.append(
            f'<rect x="{lx}" y="{ly - 9}" width="14" height="10" fill="{colour}"/>'
            f'<text x="{lx + 18}" y="{ly}" fill="#333">{label}</text>'
        )
        lx += 30 + 7 * len(label)
    out.append(
        f'<rect x="{lx}" y="{ly - 9}" width="14" height="10" fill="url(#gap)" stroke="#d62828"/>'
        f'<text x="{lx + 18}" y="{ly}" fill="#333">gap (no valid version)</text>'
    )
    lx += 170
    out.append(
        f'<line x1="{lx + 7}" y1="{ly - 10}" x2="{lx + 7}" y2="{ly + 1}" stroke="#111"'
        f' stroke-width="2"/><text x="{lx + 14}" y="{ly}" fill="#333">expiry</text>'
    )
    out.append("</svg>")
    return "".join(out), len(shown), len(rows)
