"""Compliance and lineage reports computed from the ledger's views, tied to a log checkpoint."""
