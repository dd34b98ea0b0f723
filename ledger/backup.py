"""Certificate backups: an encrypted, authenticated blob of a certificate's whole history.

A backup holds the stored events of the certificate's current generation and its
custody rows, the data key re-wrapped under a key derived from the backup key
(`<home>/backup.key` or CERTLEDGER_BACKUP_KEY). The whole payload is compressed
and sealed with AES-256-GCM, so a changed byte is refused. A restore appends a
`Restored` marker and replays the events on the name: the log stays append-only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import uuid
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.domain.errors import BadParameter, Conflict
from ledger.keys.custody import CustodyError, OwnerExport
from ledger.keys.store import SealedBlob

if TYPE_CHECKING:
    from ledger.application import Ledger

MAGIC = b"CLB1"
FORMAT = 1
MAX_BACKUP_BYTES = 16 * 1024 * 1024
_SKIPPED = {get_topic(Certificate.Registered), get_topic(Certificate.Purged)}
_PURGED = get_topic(Certificate.Purged)
_VERSIONED = {get_topic(Certificate.OperationOpened), get_topic(Certificate.CertificateImported)}


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"certledger backup " + purpose).derive(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class BackupCodec:
    """Seals and opens backup blobs with keys derived from one backup key."""

    def __init__(self, backup_key: bytes) -> None:
        self._seal_key = _derive(backup_key, b"seal")
        self.kek = _derive(backup_key, b"key wrap")

    def seal(self, payload: dict[str, Any]) -> bytes:
        nonce = os.urandom(12)
        plain = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)
        return MAGIC + nonce + AESGCM(self._seal_key).encrypt(nonce, plain, MAGIC)

    def open(self, blob: bytes) -> dict[str, Any]:
        if len(blob) > MAX_BACKUP_BYTES:
            raise BadParameter("the backup blob is too large")
        if len(blob) < len(MAGIC) + 12 + 16 or not blob.startswith(MAGIC):
            raise BadParameter("the value is not a certledger certificate backup")
        nonce, sealed = blob[4:16], blob[16:]
        try:
            plain = AESGCM(self._seal_key).decrypt(nonce, sealed, MAGIC)
        except InvalidTag:
            raise BadParameter(
                "the backup blob was altered, or was made with another backup key"
            ) from None
        payload: Any = json.loads(zlib.decompress(plain))
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise BadParameter("unsupported certificate backup format")
        return payload


def make_backup(ledger: Ledger, codec: BackupCodec, cert: Certificate) -> bytes:
    """The sealed backup of a live certificate's current generation."""
    from ledger.application import key_owner

    stored = ledger.recorder.select_events(cert.id, lte=cert.version)
    purges = [i for i, e in enumerate(stored) if e.topic == _PURGED]
    generation = stored[purges[-1] + 1 :] if purges else stored
    events = [e for e in generation if e.topic not in _SKIPPED]
    export = ledger.custody.export_owner(key_owner(cert), codec.kek)
    payload = {
        "format": FORMAT,
        "name": cert.name,
        "cert_id": str(cert.id),
        "vault": ledger.settings.vault_url,
        "created": datetime.now(UTC).isoformat(),
        "events": [
            {"topic": e.topic, "version": e.originator_version, "state": _b64(e.state)}
            for e in events
        ],
        "custody": {
            "wrapped_data_key": _b64(export.wrapped_data_key) if export.wrapped_data_key else None,
            "blobs": [
                {
                    "ref": b.ref,
                    "kind": b.kind,
                    "nonce": _b64(b.nonce),
                    "ciphertext": _b64(b.ciphertext),
                }
                for b in export.blobs
            ],
        },
    }
    return codec.seal(payload)


def restore_backup(ledger: Ledger, codec: BackupCodec, ctx: Ctx, blob: bytes) -> Certificate:
    """Restore a backup under its name, which must be free (never used, or purged)."""
    from ledger.application import key_owner

    payload = codec.open(blob)
    try:
        name = str(payload["name"])
        source_id = UUID(str(payload["cert_id"]))
        history = [
            ledger.mapper.to_domain_event(
                StoredEvent(
                    originator_id=source_id,
                    originator_version=int(e["version"]),
                    topic=str(e["topic"]),
                    state=base64.b64decode(e["state"]),
                )
            )
            for e in payload["events"]
        ]
        custody = payload["custody"]
        wrapped = custody["wrapped_data_key"]
        export = OwnerExport(
            base64.b64decode(wrapped) if wrapped else None,
            tuple(
                SealedBlob(
                    str(b["ref"]),
                    "",
                    str(b["kind"]),
                    base64.b64decode(b["nonce"]),
                    base64.b64decode(b["ciphertext"]),
                )
                for b in custody["blobs"]
            ),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise BadParameter(f"the certificate backup is malformed: {exc}") from exc
    cert = ledger.find_certificate(name)
    if cert is not None and (cert.exists or cert.is_deleted):
        if cert.is_deleted:
            raise Conflict(
                f"certificate {name!r} is deleted but recoverable: purge it before a restore",
                inner_code="ObjectIsDeletedButRecoverable",
            )
        raise Conflict(f"certificate {name!r} already exists: a restore needs a free name")
    renamed: dict[str, str] = {}
    if cert is None:
        cert = Certificate.register(ctx, name)
    else:
        used = _used_versions(ledger, cert)
        for event in history:
            version = getattr(event, "version", None)
            if isinstance(version, str) and version in used and version not in renamed:
                renamed[version] = uuid.uuid4().hex
    cert.restore(
        ctx,
        backup_sha256=hashlib.sha256(blob).hexdigest(),
        source_id=str(source_id),
        source_vault=str(payload.get("vault", "")),
        history=history,
        renamed=renamed,
    )
    try:
        rows = ledger.custody.import_owner(key_owner(cert), codec.kek, export)
    except CustodyError as exc:
        raise Conflict(f"cannot restore {name!r}: {exc}") from exc
    ledger.commit(cert, custody=rows)
    return cert


def _used_versions(ledger: Ledger, cert: Certificate) -> set[str]:
    """Version ids this stream has used, in any generation (the views key versions by id)."""
    used: set[str] = set()
    for stored in ledger.recorder.select_events(cert.id, lte=cert.version):
        if stored.topic in _VERSIONED:
            used.add(str(getattr(ledger.mapper.to_domain_event(stored), "version", "")))
    return used
