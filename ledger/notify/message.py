"""What a notification looks like on the wire: a CloudEvent (webhooks) or an email.

Both are built from the notification's recorded facts only, so a delivery repeated after
a crash sends the same bytes (same CloudEvent id, same Message-ID) and receivers can
drop the duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from ledger.domain.notification import Notification

SIGNATURE_HEADER = "X-Certledger-Signature-256"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

SUBJECTS = {
    "NearExpiry": "is about to expire",
    "Expired": "has expired",
    "NewVersionCreated": "has a new version",
    "OperationFailed": "could not be created",
}


def vault_name(vault_url: str) -> str:
    """Key Vault's vault name: the first label of the vault URL's host."""
    host = urlsplit(vault_url).hostname or "certledger"
    return host.split(".")[0]


def epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def event_data(
    vault_url: str,
    name: str,
    version: str,
    nbf: datetime | None,
    exp: datetime | None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Key Vault's Event Grid data, in its wire spelling (Id, VaultName, ..., NBF, EXP)."""
    data: dict[str, Any] = {
        "Id": f"{vault_url}/certificates/{name}/{version}",
        "VaultName": vault_name(vault_url),
        "ObjectType": "Certificate",
        "ObjectName": name,
        "Version": version,
        "NBF": epoch(nbf),
        "EXP": epoch(exp),
    }
    if error is not None:
        data["Error"] = error
    return data


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def cloud_event(note: Notification, source: str) -> dict[str, Any]:
    """A CloudEvents 1.0 event (structured mode), as Event Grid delivers Key Vault's."""
    return {
        "specversion": "1.0",
        "id": str(note.id),
        "source": source,
        "type": note.event_type,
        "subject": note.name,
        "time": _utc(note.time),
        "datacontenttype": "application/json",
        "data": note.data,
    }


def cloud_event_body(note: Notification, source: str) -> bytes:
    return json.dumps(cloud_event(note, source), separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body, hex, prefixed."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _when(epoch_seconds: Any) -> str:
    if epoch_seconds is None:
        return "-"
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def email_message(note: Notification, sender: str, source: str) -> EmailMessage:
    """A plain-text email to the certificate contacts; the Message-ID is the event's id."""
    data = note.data
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(note.recipients)
    msg["Subject"] = f"[certledger] Certificate {note.name} {SUBJECTS.get(note.kind, note.kind)}"
    msg["Date"] = format_datetime(note.time.astimezone(UTC))
    msg["Message-ID"] = f"<{note.id}@certledger>"
    msg["X-Certledger-Event-Type"] = note.event_type
    lines = [
        f"{note.event_type}",
        "",
        f"Vault:       {source}",
        f"Certificate: {note.name}",
        f"Version:     {note.version}",
        f"Not before:  {_when(data.get('NBF'))}",
        f"Expires:     {_when(data.get('EXP'))}",
        f"Trigger:     {note.trigger}",
        f"Id:          {data.get('Id')}",
    ]
    error = data.get("Error")
    if isinstance(error, dict):
        lines += ["", f"Error: {error.get('code')}: {error.get('message')}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg
