"""The Azure SDK's async clients (aiohttp transport) against `certledger serve`."""

from __future__ import annotations

import asyncio
import hashlib

from azure.keyvault.certificates import (
    CertificateContact,
    CertificateOperation,
    CertificatePolicy,
    KeyType,
    KeyVaultCertificate,
)
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.keys.crypto.aio import CryptographyClient
from azure.keyvault.secrets.aio import SecretClient

from tests.e2e.api.pki import ExternalCa, der, pfx_bundle
from tests.e2e.api.served import AsyncStaticCredential, Served

FAST = {"_polling_interval": 0.1}


def policy(cn: str, issuer: str = "Self") -> CertificatePolicy:
    return CertificatePolicy(
        issuer_name=issuer, subject=f"CN={cn}", key_type=KeyType.ec, key_curve_name="P-256"
    )


async def _lifecycle(served: Served, token: str) -> None:
    credential = AsyncStaticCredential(token)
    options = served.client_options()
    async with CertificateClient(served.url, credential, **options) as client:
        created = await client.create_certificate("aio", policy("aio"), **FAST)
        assert isinstance(created, KeyVaultCertificate) and created.cer
        got = await client.get_certificate("aio")
        assert got.properties.version == created.properties.version
        version = await client.get_certificate_version("aio", created.properties.version or "")
        assert version.cer == created.cer
        names = [p.name async for p in client.list_properties_of_certificates()]
        assert "aio" in names
        versions = [p async for p in client.list_properties_of_certificate_versions("aio")]
        assert len(versions) == 1
        updated = await client.update_certificate_properties("aio", tags={"k": "v"})
        assert updated.properties.tags == {"k": "v"}
        got_policy = await client.get_certificate_policy("aio")
        assert got_policy.issuer_name == "Self"
        new_policy = CertificatePolicy(issuer_name="Self", subject="CN=aio", validity_in_months=3)
        assert (await client.update_certificate_policy("aio", new_policy)).validity_in_months == 3

        manual = await client.create_certificate("aio-manual", policy("aio-m", "Unknown"), **FAST)
        assert isinstance(manual, CertificateOperation)
        op = await client.get_certificate_operation("aio-manual")
        assert op.csr is not None
        ca = ExternalCa.make()
        merged = await client.merge_certificate("aio-manual", [der(ca.sign_csr(op.csr))])
        assert merged.name == "aio-manual"

        pfx, cert = pfx_bundle(ca, "aio-pfx", "pw")
        imported = await client.import_certificate("aio-pfx", pfx, password="pw")
        assert imported.cer == der(cert)

        await client.create_certificate("aio-cancel", policy("c", "Unknown"), **FAST)
        assert (await client.cancel_certificate_operation("aio-cancel")).cancellation_requested
        await client.delete_certificate_operation("aio-cancel")

        backup = await client.backup_certificate("aio")
        deleted = await client.delete_certificate("aio", **FAST)
        assert deleted.recovery_id
        assert (await client.get_deleted_certificate("aio")).name == "aio"
        assert "aio" in [d.name async for d in client.list_deleted_certificates()]
        await client.recover_deleted_certificate("aio", **FAST)
        await client.delete_certificate("aio", **FAST)
        await client.purge_deleted_certificate("aio")
        restored = await client.restore_certificate_backup(backup)
        assert restored.cer == created.cer

        contacts = await client.set_contacts([CertificateContact(email="a@example.com")])
        assert contacts[0].email == "a@example.com"
        assert len(await client.get_contacts()) == 1
        assert len(await client.delete_contacts()) == 1

        issuer = await client.create_issuer("aio-ca", "LocalCA")
        assert issuer.provider == "localca"
        assert (await client.get_issuer("aio-ca")).name == "aio-ca"
        assert "aio-ca" in [i.name async for i in client.list_properties_of_issuers()]
        assert (await client.update_issuer("aio-ca", enabled=False)).enabled is False
        assert (await client.delete_issuer("aio-ca")).name == "aio-ca"

    async with SecretClient(served.url, credential, **options) as secrets:
        secret = await secrets.get_secret("aio")
        assert secret.properties.managed and secret.value
    async with KeyClient(served.url, credential, **options) as keys:
        key = await keys.get_key("aio")
        assert key.properties.managed
        async with CryptographyClient(key, credential, **options) as crypto:
            digest = hashlib.sha256(b"async").digest()
            signed = await crypto.sign(SignatureAlgorithm.es256, digest)
            verified = await crypto.verify(SignatureAlgorithm.es256, digest, signed.signature)
            assert verified.is_valid


def test_async_clients(served: Served, admin_token: str) -> None:
    asyncio.run(_lifecycle(served, admin_token))
