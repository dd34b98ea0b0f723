"""The built-in ACME provider (RFC 8555), on certbot's `acme` and `josepy` libraries."""
