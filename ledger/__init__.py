"""certledger: an event-sourced certificate vault."""
