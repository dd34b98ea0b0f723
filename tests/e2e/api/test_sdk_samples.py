"""The flows of azure-keyvault-certificates' published samples, unmodified in substance."""

from __future__ import annotations

import base64

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificatePolicy,
    KeyType,
    WellKnownIssuerNames,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.e2e.api.pki import ExternalCa, der, pem_bundle, pfx_bundle
from tests.e2e.api.served import Served, StaticCredential

FAST = {"_polling_interval": 0.1}


def test_hello_world(certificates: CertificateClient) -> None:
    # hello_world.py: create, get, update properties, delete.
    policy = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=*.microsoft.com",
        san_dns_names=["sdk.azure-int.net"],
        exportable=True,
        key_type="RSA",
        key_size=2048,
        reuse_key=False,
        content_type=CertificateContentType.pkcs12,
        validity_in_months=24,
    )
    certificate = certificates.begin_create_certificate(
        "HelloWorldCertificate", policy, **FAST
    ).result()
    assert certificate.name == "HelloWorldCertificate"
    fetched = certificates.get_certificate("HelloWorldCertificate")
    assert fetched.policy is not None and fetched.policy.issuer_name == "Self"
    assert fetched.policy.key_size == 2048
    updated = certificates.update_certificate_properties(
        "HelloWorldCertificate", tags={"Sample": "HelloWorld"}
    )
    assert updated.properties.tags == {"Sample": "HelloWorld"}
    deleted = certificates.begin_delete_certificate("HelloWorldCertificate", **FAST).result()
    assert deleted.name == "HelloWorldCertificate" and deleted.deleted_on is not None


def test_backup_restore(certificates: CertificateClient) -> None:
    # backup_restore_operations.py: create, backup, delete, purge, restore.
    cert = certificates.begin_create_certificate(
        "BackupRestoreCertificate", CertificatePolicy.get_default(), **FAST
    ).result()
    backup = certificates.backup_certificate("BackupRestoreCertificate")
    certificates.begin_delete_certificate("BackupRestoreCertificate", **FAST).wait()
    certificates.purge_deleted_certificate("BackupRestoreCertificate")
    restored = certificates.restore_certificate_backup(backup)
    assert restored.name == "BackupRestoreCertificate"
    assert restored.cer == cert.cer


def test_import_certificate(certificates: CertificateClient) -> None:
    # import_certificate.py: a PFX (PKCS#12) and a PEM certificate.
    ca = ExternalCa.make()
    pfx, pfx_cert = pfx_bundle(ca, "importPkcsCertName", "1234")
    pkcs_cert = certificates.import_certificate(
        certificate_name="importPkcsCertName", certificate_bytes=pfx, password="1234"
    )
    assert pkcs_cert.cer == der(pfx_cert)
    pem, pem_cert = pem_bundle(ca, "importPemCertName")
    pem_policy = CertificatePolicy(
        issuer_name="Self", subject="CN=importPemCertName", content_type=CertificateContentType.pem
    )
    imported = certificates.import_certificate(
        certificate_name="importPemCertName", certificate_bytes=pem, policy=pem_policy
    )
    assert imported.cer == der(pem_cert)
    assert imported.policy is not None and imported.policy.content_type == "application/x-pem-file"


def test_list_operations(certificates: CertificateClient) -> None:
    # list_operations.py: list certificates, versions, deleted certificates.
    for name in ("certificateBank", "certificateStorage"):
        certificates.begin_create_certificate(name, CertificatePolicy.get_default(), **FAST).wait()
    listed = {p.name for p in certificates.list_properties_of_certificates()}
    assert {"certificateBank", "certificateStorage"} <= listed
    tags = {"a": "b"}
    certificates.begin_create_certificate(
        "certificateBank", CertificatePolicy.get_default(), tags=tags, **FAST
    ).wait()
    versions = list(certificates.list_properties_of_certificate_versions("certificateBank"))
    assert len(versions) == 2 and {v.version for v in versions if v.tags == tags}
    for name in ("certificateBank", "certificateStorage"):
        certificates.begin_delete_certificate(name, **FAST).wait()
    deleted = {d.name for d in certificates.list_deleted_certificates()}
    assert {"certificateBank", "certificateStorage"} <= deleted


def test_recover_purge(certificates: CertificateClient) -> None:
    # recover_purge_operations.py: delete two, recover one, purge the other.
    for name in ("certificateBankRecover", "certificateStoragePurge"):
        certificates.begin_create_certificate(name, CertificatePolicy.get_default(), **FAST).wait()
        certificates.begin_delete_certificate(name, **FAST).wait()
    recovered = certificates.begin_recover_deleted_certificate(
        "certificateBankRecover", **FAST
    ).result()
    assert recovered.name == "certificateBankRecover"
    certificates.purge_deleted_certificate("certificateStoragePurge")
    with pytest.raises(ResourceNotFoundError):
        certificates.get_deleted_certificate("certificateStoragePurge")
    assert certificates.get_certificate("certificateBankRecover").cer


def test_issuers(certificates: CertificateClient) -> None:
    # issuers.py: create, get, list, update and delete issuers (provider LocalCA here).
    admin_contacts = [
        AdministratorContact(first_name="John", last_name="Doe", email="admin@microsoft.com")
    ]
    certificates.create_issuer(
        "issuer1", provider="LocalCA", account_id="keyvaultuser", admin_contacts=admin_contacts
    )
    certificates.create_issuer("issuer2", provider="LocalCA", account_id="keyvaultuser")
    issuer1 = certificates.get_issuer("issuer1")
    assert issuer1.account_id == "keyvaultuser"
    assert issuer1.admin_contacts is not None
    assert issuer1.admin_contacts[0].first_name == "John"
    names = {i.name for i in certificates.list_properties_of_issuers()}
    assert {"issuer1", "issuer2"} <= names
    updated = certificates.update_issuer("issuer1", account_id="otheruser")
    assert updated.account_id == "otheruser"
    certificates.delete_issuer("issuer1")
    with pytest.raises(ResourceNotFoundError):
        certificates.get_issuer("issuer1")
    with pytest.raises(HttpResponseError) as unknown:
        certificates.create_issuer("issuer3", provider="Test")
    assert unknown.value.status_code == 400


def test_contacts(certificates: CertificateClient) -> None:
    # contacts.py: set, get, delete.
    contact_list = [
        CertificateContact(email="admin@contoso.com", name="John Doe", phone="1111111111"),
        CertificateContact(email="admin2@contoso.com", name="John Doe2", phone="2222222222"),
    ]
    assert len(certificates.set_contacts(contact_list)) == 2
    got = certificates.get_contacts()
    assert [c.phone for c in got] == ["1111111111", "2222222222"]
    assert len(certificates.delete_contacts()) == 2


def test_parse_certificate(
    served: Served, certificates: CertificateClient, credential: StaticCredential
) -> None:
    # parse_certificate.py: the private key and certificate from the managed secret (PKCS#12).
    policy = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=*.microsoft.com",
        exportable=True,
        key_type=KeyType.rsa,
        key_size=2048,
        content_type=CertificateContentType.pkcs12,
    )
    cert = certificates.begin_create_certificate("parseCertificateName", policy, **FAST).result()
    with SecretClient(served.url, credential, **served.client_options()) as secrets:
        secret = secrets.get_secret("parseCertificateName")
    key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert key is not None and leaf is not None
    assert leaf == x509.load_der_x509_certificate(cert.cer)
    assert key.public_key() == leaf.public_key()
