"""Who acts, and under which request id."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

#: The actor of what the ledger does by itself (bootstrapping access, making the log key).
SYSTEM = "certledger"


def new_request_id() -> str:
    return str(uuid4())


@dataclass(frozen=True)
class Ctx:
    """The acting principal and the request id carried into every event."""

    actor: str
    request_id: str = field(default_factory=new_request_id)

    def as_event_fields(self) -> dict[str, str]:
        return {"actor": self.actor, "request_id": self.request_id}
