"""A test CA that writes every order, attempt, poll and cancellation to a journal file.

It signs like the built-in LocalCA. Issuer parameters (kept in its state):
  journal        path of the journal file (one line per event, shared across processes)
  fail_times     place_order raises this many times for an operation before it succeeds
  always_fail    place_order always raises (a CA that cannot be reached)
  pending_polls  the order stays pending for this many polls (for cancellation tests)
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from ledger.providers.base import (
    IssuerConfig,
    OrderRequest,
    OrderStatus,
    ProviderServices,
    ProviderSetup,
)
from ledger.providers.localca import LocalCaProvider

PARAMS = ("journal", "fail_times", "always_fail", "pending_polls")


class CountingProvider(LocalCaProvider):
    offline = False  # it stands for a CA outside the ledger: one worker at a time (a lease)

    def __init__(self, services: ProviderServices) -> None:
        super().__init__(services)

    def setup(self, issuer: IssuerConfig) -> ProviderSetup:
        base = super().setup(issuer)
        state = dict(base.state)
        state.update({k: v for k, v in issuer.params.items() if k in PARAMS})
        return ProviderSetup(state, base.custody_writes)

    @staticmethod
    def _journal(issuer: IssuerConfig) -> Path:
        return Path(str(issuer.state["journal"]))

    def _write(self, issuer: IssuerConfig, line: str) -> None:
        with self._journal(issuer).open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line + "\n")

    def _lines(self, issuer: IssuerConfig, kind: str, key: str) -> int:
        path = self._journal(issuer)
        if not path.exists():
            return 0
        return sum(1 for line in path.read_text().splitlines() if line == f"{kind} {key}")

    def place_order(self, request: OrderRequest) -> OrderStatus:
        issuer = request.issuer
        key = request.order_key
        previous = self._lines(issuer, "attempt", key)
        self._write(issuer, f"attempt {key}")
        if issuer.state.get("always_fail") or previous < int(issuer.state.get("fail_times", 0)):
            raise ConnectionError(f"CA endpoint unreachable (attempt {previous + 1})")
        book = self._services.orders
        found = book.find(issuer.name, key)
        if found is None:
            pem = self._sign(request)
            self._write(issuer, f"order {key}")
            found = book.record(issuer.name, key, "counting", key, {"certificates_pem": pem})
        return self._status(issuer, found[0], found[1])

    def _status(self, issuer: IssuerConfig, ref: str, data: dict[str, Any]) -> OrderStatus:
        if self._lines(issuer, "poll", ref) < int(issuer.state.get("pending_polls", 0)):
            return OrderStatus(order_ref=ref, state="pending", retry_after=0.01)
        return OrderStatus(order_ref=ref, state="issued", certificates_pem=data["certificates_pem"])

    def poll(self, issuer: IssuerConfig, order_ref: str) -> OrderStatus:
        self._write(issuer, f"poll {order_ref}")
        data = self._services.orders.data_for(issuer.name, order_ref)
        assert data is not None, f"poll of an order never placed: {order_ref}"
        return self._status(issuer, order_ref, data)

    def cancel(self, issuer: IssuerConfig, order_ref: str) -> None:
        self._write(issuer, f"cancel {order_ref}")


def journal_lines(path: Path, kind: str) -> list[str]:
    if not path.exists():
        return []
    return [
        line.split(" ", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith(kind + " ")
    ]
