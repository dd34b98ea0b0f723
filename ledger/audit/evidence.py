"""Evidence bundles: JSON an auditor checks offline with `ledger.audit.verify_bundle`.

{
  "format": "certledger-evidence/v1",
  "kind": "certificate" | "events" | "consistency",
  "public_key": "<C2SP verifier key>",
  "checkpoint": "<signed checkpoint note>",
  "certificate": "web", "stream": "<uuid>",         (kind certificate)
  "events": [{"position", "stream", "version", "topic",
              "state": "<base64 of the stored bytes>",
              "inclusion_proof": ["<base64 hash>", ...]}, ...],
  "consistency": {"from": "<an earlier signed checkpoint>",
                  "proof": ["<base64 hash>", ...]}     (optional)
}
"""

from __future__ import annotations

import base64
from typing import Any

from ledger.audit.store import EventRow

FORMAT = "certledger-evidence/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bundle(kind: str, public_key: str, checkpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        **extra,
        "public_key": public_key,
        "checkpoint": checkpoint,
    }


def event_item(position: int, event: EventRow, proof: list[bytes]) -> dict[str, Any]:
    return {
        "position": position,
        "stream": event.stream,
        "version": event.version,
        "topic": event.topic,
        "state": b64(event.state),
        "inclusion_proof": [b64(h) for h in proof],
    }
