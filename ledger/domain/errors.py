"""Errors the ledger raises, each with Key Vault's error code."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error a user can see; `code` is Key Vault's error code."""

    code = "BadParameter"
    inner_code: str | None = None

    def __init__(self, message: str, *, inner_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if inner_code is not None:
            self.inner_code = inner_code


class BadParameter(LedgerError):
    code = "BadParameter"


class NotFound(LedgerError):
    code = "CertificateNotFound"


class PendingNotFound(NotFound):
    code = "PendingCertificateNotFound"


class IssuerNotFound(NotFound):
    code = "CertificateIssuerNotFound"


class Conflict(LedgerError):
    code = "Conflict"


class ConcurrentChange(Conflict):
    """Another writer saved the same aggregate between this command's load and its save."""


class Forbidden(LedgerError):
    code = "Forbidden"
