"""Lifetime actions: automatic renewal and expiry notices, each fired once per version."""
