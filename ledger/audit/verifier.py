"""Full verification: recompute every leaf from the stored events, and every signed root.

Nothing stored is trusted but the events themselves and checkpoints whose signature
verifies. Leaves are recomputed from the events in recording order and folded, one tile
of 16 at a time, into the roots each checkpoint signed. Each recomputed tile hash is also
compared with the cached node of the stored tree; where they differ (and in the last,
partial tile) the stored leaf rows are read to name the first position that differs.

Large logs are scanned in chunks of whole tiles by several processes; the tile hashes
they return are folded here, in order, into the roots.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

from ledger.audit.hashing import (
    EMPTY_ROOT,
    canonical_stream,
    node_hash,
    stream_field,
    topic_prefix,
)
from ledger.audit.store import LeafRow
from ledger.audit.tree import TILE_HEIGHT, TILE_WIDTH, Frontier

Describe = Callable[[str], str]
Opener = Callable[[], AbstractContextManager["VerifySource"]]
Progress = Callable[[int], None]
EventRow = tuple[str, int, str, bytes]

#: Below this many events one process verifies the log; above, `default_jobs`.
PARALLEL_FROM = 200_000
CHUNK_EVENTS = 65_536  # a multiple of the tile width


class VerifySource(Protocol):
    """What verification reads, inside one snapshot of the database."""

    #: CPUs one worker keeps busy (2 on PostgreSQL: its server process works as hard).
    cpus_per_job: int

    def worker_source(self) -> Opener | None:
        """How a worker process opens this source, at the same snapshot where the database
        can share one (picklable; None: the scan stays in this process)."""
        ...

    def iter_events(
        self, first: int | None = None, last: int | None = None
    ) -> Iterator[list[EventRow]]: ...

    def iter_tile_nodes(
        self, first: int = 0, stop: int = 2**63 - 1
    ) -> Iterator[tuple[int, bytes]]: ...

    def leaf_rows(self, start: int, stop: int) -> list[LeafRow]: ...

    def leaf_extent(self) -> tuple[int, int]: ...

    def first_missing_position(self) -> int | None: ...

    def leaf(self, position: int) -> LeafRow | None: ...

    def stream_at(self, position: int) -> str | None: ...

    def event_count(self) -> int: ...

    def rowid_hints(self, positions: Sequence[int]) -> list[int | None]: ...


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
    mismatched_tiles: int = 0

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


@dataclass(frozen=True)
class First:
    """The first position where the events and the stored leaves disagree."""

    position: int
    reason: str
    found: str | None  # the stream of the stored event there
    expected: str | None  # the stream the leaf row records there


# -- scanning a range of events ----------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Events `start` (a tile boundary) to `start + count - 1`, by rowid range."""

    start: int
    count: int
    first_rowid: int | None  # None: from the first event
    last_rowid: int | None  # None: to the last event
    keep: frozenset[int]  # tiles whose leaves the roots of signed sizes need
    leaf_end: int
    every_leaf: bool


@dataclass
class ChunkResult:
    start: int
    count: int = 0
    tiles: list[bytes] = field(default_factory=list)  # hashes of complete tiles, in order
    partial: dict[int, list[bytes]] = field(default_factory=dict)  # tile -> its leaves
    first: First | None = None
    mismatched_tiles: int = 0


_first, _third = itemgetter(0), itemgetter(2)


class _Prefixes:
    """Topic and stream encodings, computed once per value (plain dicts: the fastest lookups)."""

    def __init__(self) -> None:
        self.topics: dict[str, bytes] = {}
        self.streams: dict[str, bytes] = {}

    def add(self, batch: list[EventRow]) -> None:
        """Encode the batch's new topics and streams; TypeError for a column not text."""
        for t in set(map(_third, batch)).difference(self.topics):
            if not isinstance(t, str):
                raise TypeError("a topic that is not text")
            self.topics[t] = topic_prefix(t)
        for s in set(map(_first, batch)).difference(self.streams):
            if not isinstance(s, str):
                raise TypeError("a stream id that is not text")
            self.streams[s] = stream_field(canonical_stream(s))


def _as_stored(row: tuple[object, ...]) -> EventRow:
    """A row whose columns were given other types (by hand): the closest bytes and numbers."""

    def text(value: object) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    stored_id, version, topic, state = row
    number = version if isinstance(version, int) and 0 <= version < 2**63 else 2**63 - 1
    blob = state if isinstance(state, bytes) else text(state).encode()
    return text(stored_id), number, text(topic), blob


def compare_rows(
    source: VerifySource,
    start: int,
    leaves: list[bytes],
    events: list[EventRow],
    node_differs: bool,
    leaf_end: int,
) -> First | None:
    """Compare a tile's recomputed leaves with its stored leaf rows; the first difference."""
    rows = source.leaf_rows(start, start + len(leaves))
    for offset, (leaf, event) in enumerate(zip(leaves, events, strict=True)):
        position = start + offset
        stream, version = canonical_stream(event[0]), event[1]
        row = rows[offset] if offset < len(rows) else None
        if row is None or row.position != position:
            reason = (
                "the stored event has no leaf"
                if position >= leaf_end
                else "the leaf rows skip this position"
            )
            return First(position, reason, stream, None)
        if row.leaf_hash != leaf or (row.stream, row.version) != (stream, version):
            return First(
                position,
                "the stored event does not match the leaf recorded for it",
                stream,
                row.stream,
            )
    if node_differs:
        return First(
            start,
            f"the cached tree node of positions {start} to {start + len(leaves) - 1} differs "
            "from these events and their leaf rows (both rewritten, or the node damaged)",
            canonical_stream(events[0][0]),
            None,
        )
    return None


def _tile_hashes(leaves: list[bytes]) -> list[bytes]:
    """The hash of each tile of `leaves` (a whole number of tiles), level by level."""
    sha256, level = hashlib.sha256, leaves
    for _ in range(TILE_HEIGHT):
        level = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level


def scan(source: VerifySource, chunk: Chunk, progress: Progress | None = None) -> ChunkResult:
    """Recompute the chunk's leaves and tile hashes; compare them with the stored tree."""
    result = ChunkResult(chunk.start)
    sha256 = hashlib.sha256
    tail = struct.Struct(">QQI").pack
    prefixes = _Prefixes()
    topics, streams = prefixes.topics, prefixes.streams
    leaves: list[bytes] = []  # recomputed leaves not yet folded into a tile
    rows: list[EventRow] = []
    base = chunk.start  # the position of leaves[0]
    for batch in source.iter_events(chunk.first_rowid, chunk.last_rowid):
        # SHA-256(0x00 || leaf data), leaf data as ledger.audit.hashing.leaf_data encodes it.
        try:
            prefixes.add(batch)
            leaves += [
                sha256(topics[t] + streams[s] + tail(v, p, len(st)) + st).digest()
                for p, (s, v, t, st) in enumerate(batch, base + len(leaves))
            ]
        except (TypeError, ValueError, struct.error, UnicodeError):
            # A column of another type than the recorder writes: hash what is there.
            batch = [_as_stored(row) for row in batch]
            prefixes.add(batch)
            leaves += [
                sha256(topics[t] + streams[s] + tail(v, p, len(st)) + st).digest()
                for p, (s, v, t, st) in enumerate(batch, base + len(leaves))
            ]
        rows += batch
        complete = len(leaves) - len(leaves) % TILE_WIDTH
        if complete:
            _tiles(source, chunk, result, base, leaves[:complete], rows)
            del leaves[:complete], rows[:complete]
            base += complete
        if progress is not None:
            progress(len(batch))
    if leaves:
        result.partial[base >> TILE_HEIGHT] = leaves
        if result.first is None:
            result.first = compare_rows(source, base, leaves, rows, False, chunk.leaf_end)
    result.count = base + len(leaves) - chunk.start
    return result


def _tiles(
    source: VerifySource,
    chunk: Chunk,
    result: ChunkResult,
    base: int,
    leaves: list[bytes],
    rows: list[EventRow],
) -> None:
    """Fold whole tiles; compare them with the cached nodes, and rows where they differ."""
    hashes = _tile_hashes(leaves)
    first = base >> TILE_HEIGHT
    stop = first + len(hashes)
    cached = dict(source.iter_tile_nodes(first, stop))
    stored = [cached.get(i) for i in range(first, stop)]
    suspects = [k for k, (h, c) in enumerate(zip(hashes, stored, strict=True)) if h != c]
    result.mismatched_tiles += sum(1 for k in suspects if stored[k] is not None)
    if chunk.every_leaf:
        suspects = list(range(len(hashes)))
    elif chunk.leaf_end < (stop << TILE_HEIGHT):  # events beyond the last leaf row
        from_tile = max(0, (chunk.leaf_end >> TILE_HEIGHT) - first)
        suspects = sorted({*suspects, *range(from_tile, len(hashes))})
    for k in suspects:
        if result.first is not None:
            break
        offset = k << TILE_HEIGHT
        result.first = compare_rows(
            source,
            base + offset,
            leaves[offset : offset + TILE_WIDTH],
            rows[offset : offset + TILE_WIDTH],
            stored[k] is not None and stored[k] != hashes[k],
            chunk.leaf_end,
        )
    for index in chunk.keep:
        if first <= index < stop:
            offset = (index - first) << TILE_HEIGHT
            result.partial[index] = leaves[offset : offset + TILE_WIDTH]
    result.tiles += hashes


def _scan_in_worker(task: tuple[Opener, Chunk]) -> ChunkResult:
    opener, chunk = task
    with opener() as source:
        return scan(source, chunk)


# -- the whole log ------------------------------------------------------------------


class _Assembler:
    """Folds tile hashes, in order, into the roots that checkpoints signed."""

    def __init__(
        self,
        source: VerifySource,
        signed: list[SignedRoot],
        describe: Describe,
        first: First | None,
    ) -> None:
        self.source = source
        self.describe = describe
        self.first = first
        self.report = VerifyReport()
        self.upper = Frontier()  # of tile hashes
        self.good_size = 0  # the largest signed size whose root matched so far
        self.pending = sorted(signed, key=lambda s: s.size)

    def root(self, partial: list[bytes]) -> bytes:
        low = Frontier()
        for leaf in partial:
            low.append(leaf)
        hashes = self.upper.hashes + low.hashes
        if not hashes:
            return EMPTY_ROOT
        r = hashes[-1]
        for h in reversed(hashes[:-1]):
            r = node_hash(h, r)
        return r

    def check(self, size: int, partial: list[bytes]) -> None:
        root = self.root(partial)
        while self.pending and self.pending[0].size == size:
            self.compare(self.pending.pop(0), root)

    def fold(self, results: list[ChunkResult]) -> int:
        """Every tile in order; signed sizes compared as they are reached. The event count."""
        partial: dict[int, list[bytes]] = {}
        for result in results:
            partial.update(result.partial)
        self.check(0, [])
        tiles = 0
        for result in results:
            for h in result.tiles:
                while self.pending and self.pending[0].size < (tiles + 1) * TILE_WIDTH:
                    size = self.pending[0].size
                    self.check(size, partial.get(tiles, [])[: size - tiles * TILE_WIDTH])
                self.upper.append(h)
                tiles += 1
        events = sum(r.count for r in results)
        tail = partial.get(tiles, []) if events % TILE_WIDTH else []
        while self.pending and self.pending[0].size <= events:
            size = self.pending[0].size
            self.check(size, tail[: size - tiles * TILE_WIDTH])
        self.report.root = self.root(tail)
        return events

    def compare(self, signed: SignedRoot, root: bytes) -> None:
        if root == signed.root:
            self.report.checked.append(signed)
            self.good_size = max(self.good_size, signed.size)
            return
        if self.first is not None and self.first.position < signed.size:
            self.report.problems.append(
                Problem(
                    None,
                    f"{signed.label} does not match the stored events "
                    f"(see position {self.first.position})",
                )
            )
            return
        good = self.good_size
        self.report.problems.append(
            Problem(
                good,
                f"position {good}: the stored events give another root than {signed.label} "
                f"signed; events from position {good} to {signed.size - 1} were changed, "
                f"removed or replaced together with their leaf rows (position {good} now holds "
                f"an event of {self.holder(good)}; the last matching checkpoint has size {good})",
            )
        )

    def holder(self, position: int) -> str:
        stream = self.source.stream_at(position)
        return "no stream" if stream is None else self.describe(stream)

    def finish(self, events: int, leaf_rows: int, leaf_end: int) -> VerifyReport:
        report = self.report
        report.events, report.leaves = events, leaf_rows
        for signed in self.pending:
            # Signed sizes beyond the stored events: the log lost its tail.
            report.problems.append(self.truncated(signed, events, leaf_end))
        if self.first is None and leaf_end > events:
            row = self.source.leaf(events)
            self.first = First(
                events,
                "its event is missing from the stored events",
                None,
                row.stream if row is not None else None,
            )
        if self.first is None and leaf_rows != leaf_end:
            missing = self.source.first_missing_position()
            if missing is not None:
                self.first = First(missing, "the leaf rows skip this position", None, None)
        if self.first is not None:
            report.problems.append(Problem(self.first.position, self.describe_first(self.first)))
        return report

    def describe_first(self, first: First) -> str:
        parts = [f"position {first.position}: {first.reason}"]
        if first.expected is not None and first.expected != first.found:
            parts.append(f"the log recorded an event of {self.describe(first.expected)} there")
        if first.found is not None:
            parts.append(f"the stored event there belongs to {self.describe(first.found)}")
        return "; ".join(parts)

    def truncated(self, signed: SignedRoot, stored: int, leaf_end: int) -> Problem:
        lost = f"{signed.label} covers {signed.size} events but only {stored} are stored"
        if self.first is not None and self.first.position <= stored:
            return Problem(None, f"{lost} (see position {self.first.position})")
        if leaf_end > stored:
            return Problem(None, lost)  # the leaf rows name the first lost event
        # The leaf rows were cut as well: only the checkpoints bound where the change starts.
        good = self.good_size
        if good >= stored:
            return Problem(stored, f"position {stored}: {lost}: the log was truncated")
        return Problem(
            good,
            f"position {good}: {lost}, and their leaf rows were cut too: events from position "
            f"{good} on were removed or replaced (the last matching checkpoint has size {good}; "
            f"position {good} now holds an event of {self.holder(good)})",
        )


def _can_fork() -> bool:
    """Workers need fork or a fork server (Linux); a fork server is used while other threads
    run, since forking would copy their locks mid-use."""
    return sys.platform == "linux"


def _start_method() -> str:
    return "fork" if threading.active_count() == 1 else "forkserver"


def default_jobs(cpus_per_job: int = 1) -> int:
    """Processes for a large log: one per CPU (SQLite), or per `cpus_per_job` CPUs."""
    return max(1, min(8, (os.cpu_count() or 1) // cpus_per_job))


def plan(
    source: VerifySource,
    events: int,
    signed: list[SignedRoot],
    leaf_end: int,
    every_leaf: bool,
    chunk_events: int,
) -> list[Chunk] | None:
    """Chunks of whole tiles covering every event, by contiguous rowid ranges.

    The leaf rows hint where each chunk starts; the scan checks each chunk holds as many
    events as planned, so a wrong hint (a damaged log) can only cost a rerun. None when
    a hint is missing.
    """
    keep = frozenset(s.size >> TILE_HEIGHT for s in signed if s.size % TILE_WIDTH)
    keep |= {events >> TILE_HEIGHT}
    starts = list(range(0, events, chunk_events)) or [0]
    hints = source.rowid_hints(starts[1:])
    if any(h is None for h in hints):
        return None
    firsts: list[int | None] = [None, *hints]
    lasts: list[int | None] = [h - 1 for h in hints if h is not None] + [None]
    return [
        Chunk(
            start=start,
            count=min(chunk_events, events - start),
            first_rowid=first,
            last_rowid=last,
            keep=keep,
            leaf_end=leaf_end,
            every_leaf=every_leaf,
        )
        for start, first, last in zip(starts, firsts, lasts, strict=True)
    ]


def verify_log(
    source: VerifySource,
    signed: list[SignedRoot],
    describe: Describe,
    progress: Progress | None = None,
    *,
    every_leaf: bool = False,
    jobs: int | None = None,
) -> VerifyReport:
    """Recompute every leaf and root from the stored events (see the module docstring).

    `every_leaf` also compares every stored leaf row, not only where a tile differs;
    `jobs` is the number of processes (default: `default_jobs` for large logs).
    """
    events = source.event_count()
    leaf_rows, leaf_end = source.leaf_extent()
    jobs = jobs or (default_jobs(source.cpus_per_job) if events >= PARALLEL_FROM else 1)
    opener = source.worker_source() if jobs > 1 and _can_fork() else None
    chunks = plan(source, events, signed, leaf_end, every_leaf, CHUNK_EVENTS) if opener else None
    results = _scan_parallel(opener, chunks, jobs, progress) if opener and chunks else None
    if results is None or any(
        r.count != c.count for r, c in zip(results, chunks or [], strict=True)
    ):
        # One process, one chunk: every event in rowid order, whatever the leaf rows say.
        whole = plan(source, events, signed, leaf_end, every_leaf, max(events, TILE_WIDTH))
        assert whole is not None
        results = [scan(source, whole[0], progress)]
    first = next((r.first for r in results if r.first is not None), None)
    assembler = _Assembler(source, signed, describe, first)
    assembler.report.mismatched_tiles = sum(r.mismatched_tiles for r in results)
    counted = assembler.fold(results)
    return assembler.finish(counted, leaf_rows, leaf_end)


def _scan_parallel(
    opener: Opener, chunks: list[Chunk], jobs: int, progress: Progress | None
) -> list[ChunkResult]:
    tasks = [(opener, chunk) for chunk in chunks]
    results = []
    with multiprocessing.get_context(_start_method()).Pool(min(jobs, len(chunks))) as pool:
        for result in pool.imap(_scan_in_worker, tasks):
            results.append(result)
            if progress is not None:
                progress(result.count)
    return results
