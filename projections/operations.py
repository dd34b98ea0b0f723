"""Pending operations: the last creation operation of each certificate."""

from __future__ import annotations

from typing import Any

from ledger.database import Cursor
from projections.view import View, at, cid, insert, on, update

T = "v_operations"
IN_PROGRESS_DETAILS = "Pending certificate created. Certificate request is in progress."


class OperationsView(View):
    name = "operations"
    tables = (T,)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT PRIMARY KEY, version TEXT NOT NULL, issuer TEXT NOT NULL,"
        " status TEXT NOT NULL, status_details TEXT NOT NULL,"
        " cancellation_requested INTEGER NOT NULL, error_code TEXT, error_message TEXT,"
        " csr_der TEXT, request_id TEXT NOT NULL, opened_at TEXT NOT NULL, closed_at TEXT)",
        f"CREATE INDEX IF NOT EXISTS {T}_by_status ON {T} (status)",
    )

    def _set(self, cur: Cursor, e: Any, **values: Any) -> None:
        update(cur, T, {"cert_id": cid(e), "version": e.version}, values)

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        insert(
            cur,
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
            replace_on="cert_id",
        )

    @on("Certificate.CsrIssued")
    def csr(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, csr_der=e.csr_der)

    @on("Certificate.IssuerOrderPlaced")
    def ordered(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, status_details=f"Order {e.order_ref} placed with {e.provider}.")

    @on("Certificate.RetryScheduled")
    def retry(self, cur: Cursor, e: Any) -> None:
        self._set(
            cur,
            e,
            status_details=f"Attempt {e.attempt} at step {e.step} failed ({e.code}: "
            f"{e.message}); retrying.",
        )

    @on("Certificate.CancellationRequested")
    def cancel_requested(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, cancellation_requested=1)

    @on("Certificate.VersionPromoted")
    def promoted(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, status="completed", status_details="", closed_at=at(e))

    @on("Certificate.OperationCancelled")
    def cancelled(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, status="cancelled", status_details=e.reason, closed_at=at(e))

    @on("Certificate.OperationFailed")
    def failed(self, cur: Cursor, e: Any) -> None:
        self._set(
            cur,
            e,
            status="failed",
            status_details=e.message,
            error_code=e.code,
            error_message=e.message,
            closed_at=at(e),
        )

    @on("Certificate.OperationDeleted")
    def deleted(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {T} WHERE cert_id = ? AND version = ?", [cid(e), e.version])

    @on("Certificate.Purged")
    def purged(self, cur: Cursor, e: Any) -> None:
        cur.execute(f"DELETE FROM {T} WHERE cert_id = ?", [cid(e)])
