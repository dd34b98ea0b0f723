"""The order book: which CA order belongs to which operation, kept beside the event log.

A provider records an order the moment the CA answers, keyed by issuer and the operation's
request id, so a worker restarted before its `IssuerOrderPlaced` was saved finds the order
instead of placing a second one. Rows hold public facts only (order URLs, CSRs, certificates).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from ledger.database import Db

ORDER_BOOK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS provider_orders ("
    " issuer TEXT NOT NULL, request_id TEXT NOT NULL, provider TEXT NOT NULL,"
    " order_ref TEXT NOT NULL, data TEXT NOT NULL,"
    " PRIMARY KEY (issuer, request_id))",
)


class OrderBook(Protocol):
    def find(self, issuer: str, request_id: str) -> tuple[str, dict[str, Any]] | None:
        """The order reference and data recorded for the request, if any."""
        ...

    def record(
        self, issuer: str, request_id: str, provider: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Record the order unless one is already there; returns the one that is kept."""
        ...

    def data_for(self, issuer: str, order_ref: str) -> dict[str, Any] | None: ...

    def replace(
        self, issuer: str, request_id: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Overwrite the row (an intent becoming the order the CA created)."""
        ...

    def refs(self, issuer: str) -> set[str]:
        """Every order reference recorded for the issuer."""
        ...

    def close(self) -> None: ...


class MemoryOrderBook:
    """An order book for one process (tests, embedded use without a store)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def find(self, issuer: str, request_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            return self._rows.get((issuer.lower(), request_id))

    def record(
        self, issuer: str, request_id: str, provider: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        with self._lock:
            return self._rows.setdefault((issuer.lower(), request_id), (order_ref, dict(data)))

    def data_for(self, issuer: str, order_ref: str) -> dict[str, Any] | None:
        with self._lock:
            for (name, _), (ref, data) in self._rows.items():
                if name == issuer.lower() and ref == order_ref:
                    return data
        return None

    def replace(
        self, issuer: str, request_id: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self._rows[(issuer.lower(), request_id)] = (order_ref, dict(data))
            return order_ref, dict(data)

    def refs(self, issuer: str) -> set[str]:
        with self._lock:
            return {ref for (name, _), (ref, _) in self._rows.items() if name == issuer.lower()}

    def close(self) -> None:
        return None


class SqlOrderBook:
    """The order book in the ledger's database (its own table, its own connection)."""

    def __init__(self, db: Db) -> None:
        self._db = db
        with db.transaction() as cur:
            cur.lock_schema()
            for statement in ORDER_BOOK_SCHEMA:
                cur.execute(statement)

    def find(self, issuer: str, request_id: str) -> tuple[str, dict[str, Any]] | None:
        rows = self._db.execute(
            "SELECT order_ref, data FROM provider_orders WHERE issuer = ? AND request_id = ?",
            (issuer.lower(), request_id),
        )
        return None if not rows else (str(rows[0][0]), json.loads(rows[0][1]))

    def record(
        self, issuer: str, request_id: str, provider: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        self._db.execute(
            "INSERT INTO provider_orders (issuer, request_id, provider, order_ref, data)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (issuer.lower(), request_id, provider, order_ref, json.dumps(data)),
        )
        found = self.find(issuer, request_id)
        assert found is not None
        return found

    def data_for(self, issuer: str, order_ref: str) -> dict[str, Any] | None:
        rows = self._db.execute(
            "SELECT data FROM provider_orders WHERE issuer = ? AND order_ref = ?",
            (issuer.lower(), order_ref),
        )
        return None if not rows else dict(json.loads(rows[0][0]))

    def replace(
        self, issuer: str, request_id: str, order_ref: str, data: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        self._db.execute(
            "UPDATE provider_orders SET order_ref = ?, data = ?"
            " WHERE issuer = ? AND request_id = ?",
            (order_ref, json.dumps(data), issuer.lower(), request_id),
        )
        return order_ref, dict(data)

    def refs(self, issuer: str) -> set[str]:
        rows = self._db.execute(
            "SELECT order_ref FROM provider_orders WHERE issuer = ?", (issuer.lower(),)
        )
        return {str(r[0]) for r in rows}

    def close(self) -> None:
        self._db.close()
