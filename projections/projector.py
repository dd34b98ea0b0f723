"""Keeps the views up to date with the event log, exactly once.

Each batch of events is applied to every view that has not yet seen it, and the
views' rows and their tracking positions commit in one transaction. Positions are
re-read under a lock inside that transaction, so several projectors (processes) on
one database never apply an event twice.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import Mapper, Notification

from ledger.database import Cursor, DatabaseUrl, Db
from projections.access import AccessView
from projections.current import CurrentView
from projections.decode import fast
from projections.deleted import DeletedView
from projections.inventory import InventoryView
from projections.issuers import ContactsView, IssuersView
from projections.lifetime import LifetimeView
from projections.lineage import LineageView
from projections.managed import ManagedView
from projections.notifications import NotificationsView
from projections.operations import OperationsView
from projections.rows import Rows
from projections.source import HEX, StreamShare, default_mapper
from projections.versions import VersionsView
from projections.view import Handler, View

TRACKING = "v_tracking"
REBUILDING = "v_rebuilding"  # positions of a rebuild's new tables
NEW = "__new"  # suffix of the tables a rebuild fills before they replace the live ones
OLD = "__old"  # suffix of the tables they replaced, until dropped (SQLite)
REVISIONS = "v_revisions"
SET_REVISION = (
    f"INSERT INTO {REVISIONS} (view, revision) VALUES (?, ?)"
    " ON CONFLICT (view) DO UPDATE SET revision = excluded.revision"
)
REBUILD_BATCH = 50_000  # events per transaction while rebuilding
REBUILD_ROWS = 10_000  # rows each view may keep cached between a rebuild's batches
VIEW_CLASSES: tuple[type[View], ...] = (
    CurrentView,
    VersionsView,
    OperationsView,
    ManagedView,
    IssuersView,
    ContactsView,
    DeletedView,
    InventoryView,
    AccessView,
    LifetimeView,
    NotificationsView,
    LineageView,
)
Progress = Callable[[int, int], None]


class Log(Protocol):
    """What a projector reads: the application recorder, an `EventLog` or a `StreamShare`."""

    def max_notification_id(self) -> int | None: ...

    def select_notifications(self, start: int, limit: int) -> Sequence[Notification]: ...


@dataclass(frozen=True)
class ViewStatus:
    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


class Projector:
    def __init__(
        self,
        db: Db,
        recorder: Log,
        mapper: Mapper[Any],
        views: Sequence[View] | None = None,
        *,
        create: bool = True,
        tracking: str = TRACKING,
    ) -> None:
        self.db = db
        self.tracking = tracking
        self.recorder = recorder
        self.mapper = fast(mapper)  # the same events, parsed faster
        self.views = list(views) if views is not None else [cls() for cls in VIEW_CLASSES]
        self.by_name = {v.name: v for v in self.views}
        self._handled = frozenset().union(*(v.topics for v in self.views))
        self._qualnames: dict[str, str | None] = {}  # topic -> handled event name, or None
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}  # position this projector last committed, by view
        # Views are rebuilt from the log at will: their commits need not wait for the disk
        # (a crash loses the last batches with their positions; the events' own commits
        # still wait).
        db.relax()
        if db.url.is_sqlite:
            db.execute("PRAGMA secure_delete=OFF")  # views hold no secrets to scrub
        else:
            db.execute("SET synchronous_commit = off")
        if create:
            self.create_tables()

    def create_tables(self, views: Iterable[View] | None = None, *, indexes: bool = True) -> None:
        """Create the views' tables; a view stored at an older revision starts again.

        Without `indexes`, secondary indexes wait for `create_indexes` (bulk loads).
        """
        with self.db.transaction() as cur:
            cur.lock_schema()
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING} ("
                " view TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {REVISIONS} ("
                " view TEXT PRIMARY KEY, revision INTEGER NOT NULL)"
            )
            stored = dict(cur.execute(f"SELECT view, revision FROM {REVISIONS}"))
            for view in views or self.views:
                if stored.get(view.name, 1) != view.revision:
                    self._drop(cur, view)
                for statement in view.schema:
                    if indexes or not _is_index(statement):
                        cur.execute(statement)
                cur.execute(
                    f"INSERT INTO {TRACKING} (view, position) VALUES (?, 0)"
                    " ON CONFLICT (view) DO NOTHING",
                    [view.name],
                )
                cur.execute(SET_REVISION, [view.name, view.revision])

    def create_indexes(self, views: Iterable[View]) -> None:
        with self.db.transaction() as cur:
            cur.lock_schema()
            for view in views:
                for statement in view.schema:
                    if _is_index(statement):
                        cur.execute(statement)

    @staticmethod
    def _drop(cur: Cursor, view: View) -> None:
        for table in view.tables:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"DELETE FROM {TRACKING} WHERE view = ?", [view.name])
        view.rows.forget()

    def select(self, names: Iterable[str] | None) -> list[View]:
        if names is None:
            return self.views
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            known = ", ".join(self.by_name)
            raise ValueError(f"unknown view(s) {', '.join(unknown)}; views: {known}")
        return [self.by_name[n] for n in names]

    def positions(self) -> dict[str, int]:
        rows = self.db.execute(f"SELECT view, position FROM {self.tracking}")
        return {str(name): int(pos) for name, pos in rows}

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def status(self) -> list[ViewStatus]:
        head = self.head()
        positions = self.positions()
        return [ViewStatus(v.name, positions.get(v.name, 0), head) for v in self.views]

    def catch_up(
        self,
        names: Iterable[str] | None = None,
        *,
        batch_size: int = 2000,
        progress: Progress | None = None,
    ) -> int:
        """Apply every new event to the views; returns how many events were read."""
        views = self.select(names)
        with self._lock:
            read = 0
            head = self.head() if progress else 0
            while True:
                positions = self.positions()
                start = min(positions.get(v.track, 0) for v in views)
                batch = self.recorder.select_notifications(start=start + 1, limit=batch_size)
                if not batch:
                    return read
                events = []
                names = self._qualnames
                for n in batch:
                    qualname = names.get(n.topic, "")
                    if qualname == "":
                        qualname = names[n.topic] = self._qualname(n.topic)
                    if qualname is not None:
                        events.append((n.id, qualname, self.mapper.to_domain_event(n)))
                if not self._apply(views, events, batch[-1].id, positions):
                    continue  # another projector got there first
                read += len(batch)
                if progress:
                    progress(batch[-1].id, max(head, batch[-1].id))
                if len(batch) < batch_size:
                    return read

    def _qualname(self, topic: str) -> str | None:
        """`Certificate.X509Merged` of `ledger.domain.certificate:Certificate.X509Merged`,
        when a view handles it."""
        qualname = topic.partition(":")[2]
        return qualname if qualname in self._handled else None

    def _apply(
        self,
        views: list[View],
        events: list[tuple[int, str, Any]],
        last: int,
        positions: dict[str, int],
    ) -> bool:
        """Apply a batch: handlers run first, then one short write transaction commits the
        rows and positions, unless another projector moved these views meanwhile (then
        nothing is written and False is returned, to read the positions again).

        `positions` are the views' positions read before the batch was selected.
        """
        live = [v for v in views if positions[v.track] < last]
        if not live:
            return True
        routes: dict[str, list[tuple[Handler, View, Rows, int]]] = {}
        for view in live:
            seen = positions[view.track]
            if self._written.get(view.track) != seen:
                view.rows.forget()  # another process moved the view: cached rows are stale
            view.rows.bind(self.db)
            for topic, handler in view.handlers.items():
                routes.setdefault(topic, []).append((handler, view, view.rows, seen))
        try:
            try:
                for position, qualname, event in events:
                    for handler, view, rows, seen in routes.get(qualname, ()):
                        if position > seen:
                            handler(view, rows, event)
            except Exception:
                # Rows read while another projector wrote may not fit these events: that
                # is a lost race, not a fault, when the positions moved meanwhile.
                now = self.positions()
                if any(now[v.track] != positions[v.track] for v in live):
                    moved = True
                    return False
                raise
            with self.db.transaction() as cur:
                lock = "" if self.db.url.is_sqlite else " FOR UPDATE"
                found = cur.execute(
                    f"SELECT view, position FROM {self.tracking} WHERE view IN"
                    f" ({', '.join('?' for _ in live)}){lock}",
                    [v.track for v in live],
                )
                moved = any(positions[str(name)] != int(pos) for name, pos in found)
                if not moved:
                    with cur.pipeline():
                        for view in live:
                            view.rows.flush(cur)
                        cur.executemany(
                            f"UPDATE {self.tracking} SET position = ? WHERE view = ?",
                            [(last, v.track) for v in live],
                        )
        except BaseException:
            moved = True
            raise
        finally:
            for view in live:
                if moved:
                    view.rows.forget()  # the next round reads positions and rows again
                    self._written.pop(view.track, None)
                else:
                    self._written[view.track] = last
        return not moved

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        *,
        progress: Progress | None = None,
        jobs: int | None = None,
    ) -> int:
        """Replay the log into new tables, then put them in place of the views' own.

        The views go on answering (and following the log) meanwhile: one transaction swaps
        the tables in at the end, with the views' positions at the head of the log when the
        rebuild began, and the views then catch up with what came since. The log is read
        stream by stream (`StreamShare`); with `jobs` > 1 (default: 2 on a multi-core
        machine, for a database other processes can open; at most 16), its streams are
        shared out between this process and `jobs - 1` others, each applying its streams'
        events to every view. Secondary indexes are built after the
        swap, which is faster than keeping them up to date row by row. One rebuild of a
        view at a time. Returns the position of the log the views were rebuilt up to.
        """
        views = self.select(names)
        until = self.head()
        shares = self._jobs(jobs)
        self._create_new(views, shares)
        bulk(self.db, True)
        try:
            with _collector_paused():
                self._replay(views, until, shares, progress)
            self._swap(views, until)
        finally:
            bulk(self.db, False)
        self.create_indexes(views)
        return until

    def _create_new(self, views: list[View], shares: int) -> None:
        """Empty new tables for a rebuild, at position 0 in each share (left-overs of a
        broken one go)."""
        with self.db.transaction() as cur:
            cur.lock_schema()
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {REBUILDING} ("
                " view TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            for view in views:
                for table in view.tables:
                    cur.execute(f"DROP TABLE IF EXISTS {table}{NEW}")
                    cur.execute(f"DROP TABLE IF EXISTS {table}{OLD}")
                for statement in view.table_ddl(NEW):
                    cur.execute(statement)
                cur.execute(f"DELETE FROM {REBUILDING} WHERE view LIKE ?", [f"{view.name}#%"])
                cur.executemany(
                    f"INSERT INTO {REBUILDING} (view, position) VALUES (?, 0)",
                    [(_track(view.name, k),) for k in range(shares)],
                )

    def _replay(
        self, views: list[View], until: int, shares: int, progress: Progress | None
    ) -> None:
        names = [v.name for v in views]
        classes = [type(v) for v in views]
        shown: Progress | None = None
        if progress is not None:
            # this process's share, told as a part of the log
            def shown(done: int, total: int) -> None:
                progress(until * done // max(total, 1), until)

        context: Any = multiprocessing.get_context(
            "fork" if threading.active_count() == 1 else "forkserver"
        )
        others = [
            context.Process(target=_rebuild_share, args=(self.db.url, names, until, (k, shares)))
            for k in range(1, shares)
        ]
        for process in others:
            process.start()
        try:
            here = _share_projector(self.db, self.mapper, classes, until, (0, shares))
            here.catch_up(batch_size=REBUILD_BATCH, progress=shown)
        finally:
            for process in others:
                process.join()
        failed = [p.exitcode for p in others if p.exitcode != 0]
        if failed:
            raise RuntimeError(f"a rebuilding process failed (exit codes {failed})")

    def _swap(self, views: list[View], until: int) -> None:
        """In one transaction: the rebuilt tables replace the views' tables, and the views'
        positions become the rebuild's end.

        On SQLite the replaced tables are renamed in the swap and dropped after it, one
        transaction each: dropping a large table holds the file's write lock while it
        frees every page, and the ledger's writers wait meanwhile."""
        sqlite = self.db.url.is_sqlite
        with self._lock, self.db.transaction() as cur:
            cur.lock_schema()
            for view in views:
                for table in view.tables:
                    if sqlite:
                        if cur.execute(
                            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            [table],
                        ):
                            cur.execute(f"ALTER TABLE {table} RENAME TO {table}{OLD}")
                        cur.execute(f"ALTER TABLE {table}{NEW} RENAME TO {table}")
                    else:
                        cur.execute(f"DROP TABLE IF EXISTS {table}")
                        cur.execute(f"ALTER TABLE {table}{NEW} RENAME TO {table}")
                        # the primary key's index keeps its name
                        cur.execute(f"ALTER INDEX {table}{NEW}_pkey RENAME TO {table}_pkey")
                cur.execute(
                    f"INSERT INTO {TRACKING} (view, position) VALUES (?, ?)"
                    " ON CONFLICT (view) DO UPDATE SET position = excluded.position",
                    [view.name, until],
                )
                cur.execute(SET_REVISION, [view.name, view.revision])
                cur.execute(f"DELETE FROM {REBUILDING} WHERE view LIKE ?", [f"{view.name}#%"])
            for view in views:
                view.rows.forget()  # the tables under the cache changed
                self._written.pop(view.name, None)
        if sqlite:
            for view in views:
                for table in view.tables:
                    self.db.execute(f"DROP TABLE IF EXISTS {table}{OLD}")

    def _jobs(self, jobs: int | None) -> int:
        if self.db.url.is_sqlite and self.db.url.path is None:
            return 1  # an in-memory database is this process's alone
        if jobs is None:
            jobs = min(2, os.cpu_count() or 1)
        return max(1, min(jobs, len(HEX)))

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Read-your-writes: until every view has reached `position` (catching up here)."""
        deadline = time.monotonic() + timeout
        while min(self.positions().values(), default=0) < position:
            self.catch_up()
            if time.monotonic() > deadline:
                return False
        return True

    def follow(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Keep the views up to date until `stop` is set (a projection follower)."""
        waker = Waker(self.db, interval)
        try:
            while not stop.is_set():
                if self.catch_up() == 0:
                    waker.wait(stop)
        finally:
            waker.close()


def _track(name: str, share: int) -> str:
    return f"{name}#{share}"


def _share_projector(
    db: Db, mapper: Mapper[Any], classes: list[type[View]], until: int, share: tuple[int, int]
) -> Projector:
    """A projector filling the new tables of these views from one share of the log."""
    views = [cls(suffix=NEW, track=_track(cls.name, share[0])) for cls in classes]
    for view in views:
        view.rows.capacity = REBUILD_ROWS
    log = StreamShare(db, until=until, share=share)
    return Projector(db, log, mapper, views, create=False, tracking=REBUILDING)


def _rebuild_share(url: DatabaseUrl, names: list[str], until: int, share: tuple[int, int]) -> None:
    """In another process: fill these views' new tables from one share of the log."""
    db = url.connect()
    try:
        classes = [cls for cls in VIEW_CLASSES if cls.name in names]
        projector = _share_projector(db, default_mapper(), classes, until, share)
        bulk(db, True)
        with _collector_paused():
            projector.catch_up(batch_size=REBUILD_BATCH)
    finally:
        db.close()


def bulk(db: Db, on: bool) -> None:
    """SQLite settings for a rebuild: a large page cache, the log read through a memory
    map (no copy per page read), rarer WAL checkpoints; after it, the write-ahead log is
    emptied into the database (readers slow down behind a long one)."""
    if db.url.is_sqlite and db.url.path is not None:
        db.execute(f"PRAGMA cache_size = {-1048576 if on else -2000}")  # KiB: 1 GiB
        db.execute(f"PRAGMA mmap_size = {1 << 40 if on else 0}")  # as much as SQLite allows
        db.execute(f"PRAGMA wal_autocheckpoint = {20000 if on else 1000}")
        if not on:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a rebuild: the events and rows it makes form no
    cycles, and full collections over a large live heap took a third of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _is_index(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))


class Waker:
    """Waits for new events: LISTEN/NOTIFY on PostgreSQL, a short poll on SQLite."""

    def __init__(self, db: Db, interval: float) -> None:
        self.interval = interval
        self._conn: Any = None
        if not db.url.is_sqlite:
            import psycopg

            self._conn = psycopg.connect(db.url.conninfo(), autocommit=True)
            self._conn.execute("LISTEN ledger_events")

    def wait(self, stop: threading.Event) -> None:
        if self._conn is None:
            stop.wait(self.interval)
            return
        for _ in self._conn.notifies(timeout=self.interval, stop_after=1):
            break

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
