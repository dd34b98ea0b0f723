"""Notifications: raised from the event log, delivered at least once from an outbox."""
