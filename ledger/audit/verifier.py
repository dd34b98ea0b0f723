"""Full verification: recompute every leaf from the stored events, and every signed root.

Nothing stored is trusted but the events themselves and checkpoints whose signature
verifies: leaves are recomputed from the events in recording order, compared with the
stored leaf rows (to name the first position that differs), and folded into the roots
that each checkpoint signed.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, zip_longest
from uuid import UUID

from ledger.audit.hashing import EMPTY_ROOT, LEAF_ENCODING_VERSION
from ledger.audit.tree import Frontier

Describe = Callable[[str], str]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class SignedRoot:
    """A checkpoint whose signature verified: the log promised this root at this size."""

    size: int
    root: bytes
    label: str


@dataclass(frozen=True)
class Problem:
    """Something the stored log contradicts. `position` is None for checkpoint problems."""

    position: int | None
    message: str


@dataclass
class VerifyReport:
    events: int = 0
    leaves: int = 0
    root: bytes = EMPTY_ROOT
    checked: list[SignedRoot] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    mismatched_leaves: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> Problem | None:
        """The problem at the lowest position (else the first problem found)."""
        placed = [p for p in self.problems if p.position is not None]
        if placed:
            return min(placed, key=lambda p: p.position or 0)
        return self.problems[0] if self.problems else None


@dataclass
class _Walk:
    """What the walk over events and leaves found, before names are looked up."""

    first_leaf_problem: tuple[int, str, str | None, str | None] | None = None
    mismatches: int = 0
    good_size: int = 0  # the largest signed size whose root matched so far
    stream_at_good: str | None = None  # the stream of the event at that position


def _canonical(stored_id: str) -> str:
    try:
        return str(UUID(stored_id))
    except ValueError:
        return stored_id


def verify_log(
    events: Iterator[list[tuple[str, int, str, bytes]]],
    leaves: Iterator[list[tuple[int, str, int, bytes]]],
    signed: list[SignedRoot],
    describe: Describe,
    progress: Progress | None = None,
) -> VerifyReport:
    """Walk `events` (recording order) and `leaves` (position order) in step.

    Each leaf is recomputed from its event and folded into a compact range; at each
    signed size the recomputed root must equal the signed one.
    """
    report = VerifyReport()
    walk = _Walk()
    pending = sorted(signed, key=lambda s: s.size)
    checks = iter(pending)
    nxt = next(checks, None)
    while nxt is not None and nxt.size == 0:
        _compare(report, nxt, EMPTY_ROOT, walk, describe)
        nxt = next(checks, None)

    frontier = Frontier()
    sha256 = hashlib.sha256
    head = struct.Struct(">BQH").pack
    middle = struct.Struct(">QH").pack
    length = struct.Struct(">I").pack
    streams: dict[str, tuple[str, bytes]] = {}
    topics: dict[str, bytes] = {}
    position = 0
    event_rows = chain.from_iterable(_counted(events, progress))
    for ev, lf in zip_longest(event_rows, chain.from_iterable(leaves)):
        if ev is None or lf is None:
            if walk.first_leaf_problem is None:
                if ev is None:
                    assert lf is not None
                    walk.first_leaf_problem = (
                        position,
                        "its event is missing from the stored events",
                        None,
                        lf[1],
                    )
                else:
                    walk.first_leaf_problem = (
                        position,
                        "the stored event has no leaf",
                        _canonical(ev[0]),
                        None,
                    )
            if ev is None:
                report.leaves += 1
                continue
            lf = None
        stored_id, version, topic, state = ev
        cached = streams.get(stored_id)
        if cached is None:
            text = _canonical(stored_id)
            cached = streams[stored_id] = (text, text.encode())
        stream, sb = cached
        if position == walk.good_size:
            walk.stream_at_good = stream
        tb = topics.get(topic)
        if tb is None:
            tb = topics[topic] = topic.encode()
        leaf = sha256(
            b"\x00"
            + head(LEAF_ENCODING_VERSION, position, len(sb))
            + sb
            + middle(version, len(tb))
            + tb
            + length(len(state))
            + state
        ).digest()
        if lf is not None:
            report.leaves += 1
            if lf[0] != position or lf[3] != leaf or lf[1] != stream or lf[2] != version:
                walk.mismatches += 1
                if walk.first_leaf_problem is None:
                    reason = (
                        f"the leaf rows skip from position {position - 1} to {lf[0]}"
                        if lf[0] != position
                        else "the stored event does not match the leaf recorded for it"
                    )
                    walk.first_leaf_problem = (position, reason, stream, lf[1])
        frontier.append(leaf)
        position += 1
        while nxt is not None and nxt.size == position:
            _compare(report, nxt, frontier.root(), walk, describe)
            nxt = next(checks, None)
    report.events = position
    report.root = frontier.root()
    report.mismatched_leaves = walk.mismatches
    while nxt is not None:
        # Signed sizes beyond the stored events: the log lost its tail.
        report.problems.append(_truncated(nxt, position, walk, describe))
        nxt = next(checks, None)
    if walk.first_leaf_problem is not None:
        at, reason, found, expected = walk.first_leaf_problem
        report.problems.append(Problem(at, _at(at, reason, found, expected, describe)))
    return report


def _counted(
    batches: Iterator[list[tuple[str, int, str, bytes]]], progress: Progress | None
) -> Iterator[list[tuple[str, int, str, bytes]]]:
    for batch in batches:
        yield batch
        if progress is not None:
            progress(len(batch))


def _at(
    position: int, reason: str, found: str | None, expected: str | None, describe: Describe
) -> str:
    parts = [f"position {position}: {reason}"]
    if expected is not None and expected != found:
        parts.append(f"the log recorded an event of {describe(expected)} there")
    if found is not None:
        parts.append(f"the stored event there belongs to {describe(found)}")
    return "; ".join(parts)


def _truncated(signed: SignedRoot, stored: int, walk: _Walk, describe: Describe) -> Problem:
    lost = f"{signed.label} covers {signed.size} events but only {stored} are stored"
    first = walk.first_leaf_problem
    if first is not None and first[0] <= stored:
        return Problem(None, f"{lost} (see position {first[0]})")
    # The leaf rows were cut as well: only the checkpoints bound where the change starts.
    good = walk.good_size
    if good >= stored:
        return Problem(stored, f"position {stored}: {lost}: the log was truncated")
    holder = describe(walk.stream_at_good) if walk.stream_at_good else "an unknown stream"
    return Problem(
        good,
        f"position {good}: {lost}, and their leaf rows were cut too: events from position "
        f"{good} on were removed or replaced (the last matching checkpoint has size {good}; "
        f"position {good} now holds an event of {holder})",
    )


def _compare(
    report: VerifyReport, signed: SignedRoot, root: bytes, walk: _Walk, describe: Describe
) -> None:
    if root == signed.root:
        report.checked.append(signed)
        walk.good_size = max(walk.good_size, signed.size)
        return
    first = walk.first_leaf_problem
    if first is not None and first[0] < signed.size:
        message = f"{signed.label} does not match the stored events (see position {first[0]})"
        report.problems.append(Problem(None, message))
        return
    good = walk.good_size
    holder = describe(walk.stream_at_good) if walk.stream_at_good else "an unknown stream"
    report.problems.append(
        Problem(
            good,
            f"position {good}: the stored events give another root than {signed.label} "
            f"signed; events from position {good} to {signed.size - 1} were changed, removed "
            f"or replaced together with their leaf rows (position {good} now holds an event "
            f"of {holder}; the last matching checkpoint has size {good})",
        )
    )
