"""Where the ledger is stored: an SQLite file or a PostgreSQL database, from one URL.

`sqlite:///PATH` or `postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?schema=NAME]`.
Besides the eventsourcing environment, `Db` gives the views and custody a small
DB-API connection that speaks both: SQL is written with `?` placeholders.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

Kind = Literal["sqlite", "postgresql"]
SCHEMA_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_GATES: dict[str, threading.RLock] = {}
_GATES_LOCK = threading.Lock()
_NO_GATE: AbstractContextManager[Any] = nullcontext()


def write_gate(path: Path | str) -> threading.RLock:
    """The lock this process's writers to one SQLite file take before writing.

    Writers on several connections of one process queue here and are handed the file at
    once, instead of in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15 ms... between
    tries (other processes still meet that handler). Take it before any other lock.
    """
    key = str(Path(path).resolve())
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = threading.RLock()
        return gate


def _tuples(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples (both drivers give tuples already unless told otherwise)."""
    if not rows or type(rows[0]) is tuple:
        return rows
    return [tuple(r) for r in rows]


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


@dataclass(frozen=True)
class DatabaseUrl:
    url: str
    kind: Kind
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""
    schema: str = "public"

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if not path:
                raise ValueError(f"database URL {url!r} names no file")
            return cls(url=url, kind="sqlite", path=Path("/" + path.lstrip("/")))
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"unsupported database URL {url!r}: expected sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DBNAME"
            )
        dbname = parts.path.lstrip("/")
        if not dbname:
            raise ValueError(f"database URL {url!r} names no database")
        schema = parse_qs(parts.query).get("schema", ["public"])[0].lower()
        if not schema or not set(schema) <= SCHEMA_CHARS:
            raise ValueError(f"database URL {url!r}: schema must be [a-z0-9_]+")
        try:
            port = parts.port or 5432
        except ValueError as exc:
            raise ValueError(f"database URL {url!r} has an invalid port") from exc
        return cls(
            url=url,
            kind="postgresql",
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=dbname,
            schema=schema,
        )

    @classmethod
    def memory(cls) -> DatabaseUrl:
        """A private in-memory SQLite database (for point-in-time views)."""
        return cls(url="sqlite://:memory:", kind="sqlite")

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment for eventsourcing's persistence module."""
        if self.is_sqlite:
            assert self.path is not None
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.path),
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerSQLiteRecorder",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
            "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerPostgresRecorder",
        }

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=self.dbname,
        )

    def connect(self) -> Db:
        return Db(self)


class Db:
    """One connection, shared by threads under a lock; `?` placeholders on both backends."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._translated: dict[str, str] = {}
        self._gate: AbstractContextManager[Any] = _NO_GATE
        self._conn: Any
        if url.is_sqlite and url.path is None:
            self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        elif url.is_sqlite:
            assert url.path is not None
            url.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                url.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._gate = write_gate(url.path)
        else:
            import psycopg

            self._conn = psycopg.connect(url.conninfo(), autocommit=True)
            self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{url.schema}"')
            self._conn.execute(f'SET search_path TO "{url.schema}"')

    def _sql(self, sql: str) -> str:
        if self.url.is_sqlite:
            return sql
        translated = self._translated.get(sql)
        if translated is None:
            translated = self._translated[sql] = sql.replace("?", "%s")
        return translated

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement outside a transaction; return its rows."""
        gated = self._gate is not _NO_GATE and _writes(sql)
        with self._gate if gated else _NO_GATE, self._lock:
            cur = self._conn.execute(self._sql(sql), tuple(params))
            return _tuples(cur.fetchall()) if cur.description else []

    def columns(self, table: str) -> tuple[str, ...]:
        """The table's column names, in order."""
        with self._lock:
            cur = self._conn.execute(f"SELECT * FROM {table} WHERE 1 = 0")
            names = tuple(str(d[0]) for d in cur.description)
            cur.fetchall()
            return names

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, so writers are serialised)."""
        with self._gate, self._lock:
            if self.url.is_sqlite:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Cursor(self, self._conn.cursor())
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            else:
                with self._conn.transaction():
                    yield Cursor(self, self._conn.cursor())

    def relax(self) -> Db:
        """SQLite: commits on this connection stop waiting for the disk (synchronous=NORMAL;
        still safe from a process crash). For what is rebuilt or re-derived at will (views,
        leases), never for events."""
        if self.url.is_sqlite:
            self.execute("PRAGMA synchronous=NORMAL")
        return self

    def close(self) -> None:
        with self._lock:
            self._conn.close()


DDL_LOCK = 0x6365727469  # serialises schema changes between processes on PostgreSQL


@contextmanager
def schema_lock(url: DatabaseUrl) -> Iterator[None]:
    """Hold the schema lock across work done on other connections (PostgreSQL)."""
    if url.is_sqlite:
        yield
        return
    db = url.connect()
    try:
        db.execute("SELECT pg_advisory_lock(?)", [DDL_LOCK])
        yield
    finally:
        db.execute("SELECT pg_advisory_unlock(?)", [DDL_LOCK])
        db.close()


class Cursor:
    """A cursor inside `Db.transaction()`, translating placeholders."""

    def __init__(self, db: Db, cursor: Any) -> None:
        self._db = db
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._db._sql(sql), tuple(params))
        if self._cursor.description is None:
            return []
        return _tuples(self._cursor.fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute a statement whose rows are not wanted."""
        self._cursor.execute(self._db._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._db._sql(sql), rows)

    def columns(self, table: str) -> tuple[str, ...]:
        """The table's column names, in order."""
        self._cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        names = tuple(str(d[0]) for d in self._cursor.description)
        self._cursor.fetchall()
        return names

    def pipeline(self) -> AbstractContextManager[Any]:
        """Send the statements inside without waiting for each answer (PostgreSQL)."""
        if self._db.url.is_sqlite:
            return nullcontext()
        return self._cursor.connection.pipeline()  # type: ignore[no-any-return]

    def lock_key(self, key: str) -> None:
        """Within a transaction: serialise on `key` (SQLite's write lock already does)."""
        if not self._db.url.is_sqlite:
            self._cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def lock_schema(self) -> None:
        """Within a transaction: wait for other processes' schema changes (PostgreSQL)."""
        if not self._db.url.is_sqlite:
            self._cursor.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


def log_table(db: Db) -> tuple[str, str]:
    """The event log's table, and its column of positions in the whole log."""
    if db.url.is_sqlite:
        return "stored_events", "rowid"
    return f'"{db.url.schema}".ledger_events', "notification_id"


def stream_positions(db: Db, originator_id: str) -> dict[int, int]:
    """Each event's notification position (its place in the whole log), by stream version."""
    table, position = log_table(db)
    stream = originator_id.replace("-", "") if db.url.is_sqlite else originator_id
    rows = db.execute(
        f"SELECT originator_version, {position} FROM {table} WHERE originator_id = ?", [stream]
    )
    return {int(v): int(p) for v, p in rows}


def log_head(db: Db) -> int:
    """The position of the last event in the log (0 when empty or not yet created)."""
    table, position = log_table(db)
    sql = f"SELECT MAX({position}) FROM {table}"
    try:
        rows = db.execute(sql)
    except Exception:  # the log's table does not exist yet
        return 0
    return int(rows[0][0] or 0)
