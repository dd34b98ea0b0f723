"""Read models: views of the event log."""
