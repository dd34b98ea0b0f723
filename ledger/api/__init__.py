"""The Key Vault compatible HTTPS API (FastAPI): parse, call the ledger or a query, render.

FastAPI is imported only here and below, so the CLI starts without it.
"""
