"""Pending operations: the last creation operation of each certificate."""

from __future__ import annotations

from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, on

T = "v_operations"
IN_PROGRESS_DETAILS = "Pending certificate created. Certificate request is in progress."


class OperationsView(View):
    name = "operations"
    keys = {T: ("cert_id",)}
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, version TEXT NOT NULL, issuer TEXT NOT NULL,"
        " status TEXT NOT NULL, status_details TEXT NOT NULL,"
        " cancellation_requested INTEGER NOT NULL, error_code TEXT, error_message TEXT,"
        " csr_der TEXT, request_id TEXT NOT NULL, opened_at TEXT NOT NULL, closed_at TEXT)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_status ON {T} (status)",
    )

    def _set(self, rows: Rows, e: Any, **values: Any) -> None:
        row = rows.get(T, cid(e))
        if row is not None and row["version"] == e.version:
            rows.patch(T, (cid(e),), **values)

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        rows.put(
            T,
            {
                "cert_id": cid(e),
                "version": e.version,
                "issuer": e.issuer_name,
                "status": "inProgress",
                "status_details": IN_PROGRESS_DETAILS,
                "cancellation_requested": 0,
                "error_code": None,
                "error_message": None,
                "csr_der": None,
                "request_id": e.request_id,
                "opened_at": at(e),
                "closed_at": None,
            },
        )

    @on("Certificate.CsrIssued")
    def csr(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, csr_der=e.csr_der)

    @on("Certificate.IssuerOrderPlaced")
    def ordered(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, status_details=f"Order {e.order_ref} placed with {e.provider}.")

    @on("Certificate.RetryScheduled")
    def retry(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            status_details=f"Attempt {e.attempt} at step {e.step} failed ({e.code}: "
            f"{e.message}); retrying.",
        )

    @on("Certificate.CancellationRequested")
    def cancel_requested(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, cancellation_requested=1)

    @on("Certificate.VersionPromoted")
    def promoted(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, status="completed", status_details="", closed_at=at(e))

    @on("Certificate.OperationCancelled")
    def cancelled(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, status="cancelled", status_details=e.reason, closed_at=at(e))

    @on("Certificate.OperationFailed")
    def failed(self, rows: Rows, e: Any) -> None:
        self._set(
            rows,
            e,
            status="failed",
            status_details=e.message,
            error_code=e.code,
            error_message=e.message,
            closed_at=at(e),
        )

    @on("Certificate.OperationDeleted")
    def deleted(self, rows: Rows, e: Any) -> None:
        row = rows.get(T, cid(e))
        if row is not None and row["version"] == e.version:
            rows.delete(T, cid(e))

    @on("Certificate.Purged")
    def purged(self, rows: Rows, e: Any) -> None:
        rows.delete(T, cid(e))
