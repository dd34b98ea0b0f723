"""Backups travel between ledgers sharing a backup key; purge shreds the key material."""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import CertificateClient, CertificatePolicy, KeyType
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ledger.bootstrap import open_ledger
from ledger.domain.context import SYSTEM
from ledger.settings import Settings
from tests.e2e.api.served import Served, StaticCredential, clean_env, start

FAST = {"_polling_interval": 0.1}
POLICY = CertificatePolicy(
    issuer_name="Self", subject="CN=travel", key_type=KeyType.ec, key_curve_name="P-256"
)


def client(served: Served) -> CertificateClient:
    return CertificateClient(
        served.url, StaticCredential(served.token()), **served.client_options()
    )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Served, Served, Served]]:
    """Two ledgers sharing a backup key, and a third with its own."""
    shared = base64.b64encode(os.urandom(32)).decode()
    env = clean_env(CERTLEDGER_BACKUP_KEY=shared)
    servers = [
        start(tmp_path / "a", env=env),
        start(tmp_path / "b", env=env),
        start(tmp_path / "c"),
    ]
    try:
        yield servers[0], servers[1], servers[2]
    finally:
        for server in servers:
            server.stop()


def test_restore_into_another_ledger_with_the_same_backup_key(
    pair: tuple[Served, Served, Served],
) -> None:
    a, b, c = pair
    with client(a) as source, client(b) as target, client(c) as stranger:
        first = source.begin_create_certificate("travel", POLICY, **FAST).result()
        second = source.begin_create_certificate("travel", POLICY, **FAST).result()
        source.update_certificate_properties("travel", tags={"kept": "yes"})
        blob = source.backup_certificate("travel")

        restored = target.restore_certificate_backup(blob)
        assert restored.cer == second.cer
        assert restored.properties.version == second.properties.version  # ids kept
        assert restored.properties.tags == {"kept": "yes"}
        versions = {v.version for v in target.list_properties_of_certificate_versions("travel")}
        assert versions == {first.properties.version, second.properties.version}
        with SecretClient(b.url, StaticCredential(b.token()), **b.client_options()) as secrets:
            value = secrets.get_secret("travel").value
        key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
        assert key is not None and leaf is not None and key.public_key() == leaf.public_key()

        with pytest.raises(HttpResponseError) as foreign:
            stranger.restore_certificate_backup(blob)
        assert foreign.value.status_code == 400
        assert "backup key" in str(foreign.value)

        tampered = bytearray(blob)
        tampered[len(tampered) // 2] ^= 0x01
        with pytest.raises(HttpResponseError) as altered:
            stranger.restore_certificate_backup(bytes(tampered))
        assert altered.value.status_code == 400
        with pytest.raises(HttpResponseError):
            target.restore_certificate_backup(bytes(tampered))


def _files(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_purge_through_the_api_destroys_the_key_material(served: Served) -> None:
    with client(served) as certificates:
        cert = certificates.begin_create_certificate("shredded", POLICY, **FAST).result()
        with SecretClient(
            served.url, StaticCredential(served.token()), **served.client_options()
        ) as secrets:
            secret = secrets.get_secret("shredded")
        key, _, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
        assert key is not None
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with sqlite3.connect(served.home / "ledger.db") as db:
            rows = db.execute(
                "SELECT ciphertext FROM custody_blobs WHERE owner = 'cert:shredded:1'"
            ).fetchall()
            wrapped = db.execute(
                "SELECT wrapped_key FROM custody_data_keys WHERE owner = 'cert:shredded:1'"
            ).fetchall()
        db.close()
        assert len(rows) == 1 and len(wrapped) == 1
        stored = [bytes(rows[0][0]), bytes(wrapped[0][0])]
        before = _files(served.home)
        assert pkcs8 not in before  # kept encrypted, never in plaintext
        assert all(blob in before for blob in stored)

        certificates.begin_delete_certificate("shredded", **FAST).wait()
        assert all(blob in _files(served.home) for blob in stored)  # recoverable until purged
        certificates.purge_deleted_certificate("shredded")
        after = _files(served.home)
        for blob in stored:
            assert blob not in after, "purged key material is still on disk"
        assert pkcs8 not in after
        assert cert.cer is not None


def test_retention_ends_in_an_automatic_purge(tmp_path: Path) -> None:
    """scheduledPurgeDate is the deletion plus the retention; then the worker purges."""
    home = tmp_path / "home"
    served = start(home, env=clean_env(CERTLEDGER_RECOVERABLE_DAYS="7"))
    try:
        with client(served) as certificates:
            certificates.begin_create_certificate("expiring", POLICY, **FAST).result()
            deleted = certificates.begin_delete_certificate("expiring", **FAST).result()
            assert deleted.deleted_on and deleted.scheduled_purge_date
            assert deleted.scheduled_purge_date - deleted.deleted_on == timedelta(days=7)
            assert deleted.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    finally:
        served.stop()
    with sqlite3.connect(home / "ledger.db") as db:
        stored = [
            bytes(row[0])
            for row in db.execute(
                "SELECT ciphertext FROM custody_blobs WHERE owner = 'cert:expiring:1'"
                " UNION ALL SELECT wrapped_key FROM custody_data_keys"
                " WHERE owner = 'cert:expiring:1'"
            )
        ]
    db.close()
    assert len(stored) == 2

    # The same ledger, its clock a day past the scheduled purge date.
    later = (deleted.scheduled_purge_date + timedelta(days=1)).isoformat()
    served = start(home, env=clean_env(CERTLEDGER_RECOVERABLE_DAYS="7", CERTLEDGER_NOW=later))
    try:
        with client(served) as certificates:
            deadline = time.monotonic() + 30
            while True:
                try:
                    certificates.get_deleted_certificate("expiring")
                except ResourceNotFoundError:
                    break
                assert time.monotonic() < deadline, "the certificate was never purged"
                time.sleep(0.1)
            assert "expiring" not in {c.name for c in certificates.list_deleted_certificates()}
    finally:
        served.stop()
    after = _files(home)
    for blob in stored:
        assert blob not in after, "purged key material is still on disk"
    ledger = open_ledger(Settings.resolve(home=home, environ={}))
    try:
        events = [
            ledger.mapper.to_domain_event(n)
            for n in ledger.recorder.select_notifications(start=1, limit=10000)
        ]
    finally:
        ledger.close()
    purged = [e for e in events if type(e).__name__ == "Purged"]
    assert [e.actor for e in purged] == [SYSTEM]
