"""Every CertificateClient method of the unmodified Azure SDK, against `certledger serve`."""

from __future__ import annotations

import base64
import hashlib

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateClient,
    CertificateContact,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    KeyType,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.e2e.api.pki import ExternalCa, der, pem_bundle, pfx_bundle
from tests.e2e.api.served import Served, StaticCredential

FAST = {"_polling_interval": 0.1}


def self_policy(cn: str, content_type: str = CertificateContentType.pkcs12) -> CertificatePolicy:
    return CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject=f"CN={cn}",
        san_dns_names=[f"{cn}.example"],
        key_type=KeyType.ec,
        key_curve_name="P-256",
        content_type=content_type,
        validity_in_months=12,
        exportable=True,
    )


def create(client: CertificateClient, name: str, **kwargs: object) -> KeyVaultCertificate:
    poller = client.begin_create_certificate(name, self_policy(name), **kwargs, **FAST)
    result = poller.result()
    assert isinstance(result, KeyVaultCertificate), result
    return result


def test_create_get_and_versions(certificates: CertificateClient) -> None:
    first = create(certificates, "web", tags={"team": "a"})
    assert first.name == "web" and first.cer and first.properties.version
    assert first.policy is not None and first.policy.issuer_name == "Self"
    assert first.properties.tags == {"team": "a"}
    parsed = x509.load_der_x509_certificate(first.cer)
    assert parsed.subject.rfc4514_string() == "CN=web"
    assert first.properties.x509_thumbprint == hashlib.sha1(first.cer).digest()

    second = create(certificates, "web")
    assert second.properties.version != first.properties.version
    latest = certificates.get_certificate("web")
    assert latest.properties.version == second.properties.version
    old = certificates.get_certificate_version("web", first.properties.version)
    assert old.cer == first.cer
    versions = {v.version for v in certificates.list_properties_of_certificate_versions("web")}
    assert versions == {first.properties.version, second.properties.version}
    names = {p.name for p in certificates.list_properties_of_certificates()}
    assert {"web", "certledger-tls"} <= names
    raw = certificates.send_request(HttpRequest("GET", "/certificates/web?api-version=7.6"))
    assert raw.status_code == 200 and raw.json()["cer"] == base64.b64encode(second.cer).decode()


def test_list_pages_with_max_page_size(certificates: CertificateClient) -> None:
    for i in range(4):
        create(certificates, f"page-{i}")
    pages = certificates.list_properties_of_certificates(max_page_size=2).by_page()
    sizes = [len(list(page)) for page in pages]
    assert len(sizes) >= 3 and all(size <= 2 for size in sizes)
    listed = [p.name for p in certificates.list_properties_of_certificates(max_page_size=2)]
    assert {f"page-{i}" for i in range(4)} <= set(listed)
    assert listed == sorted(listed) and len(listed) == len(set(listed))


def test_update_properties_and_policy(certificates: CertificateClient) -> None:
    cert = create(certificates, "props")
    updated = certificates.update_certificate_properties(
        "props", enabled=False, tags={"env": "prod"}
    )
    assert updated.properties.enabled is False and updated.properties.tags == {"env": "prod"}
    back = certificates.update_certificate_properties(
        "props", cert.properties.version, enabled=True
    )
    assert back.properties.enabled is True

    policy = certificates.get_certificate_policy("props")
    assert policy.key_type == KeyType.ec and policy.validity_in_months == 12
    patch = CertificatePolicy(issuer_name="Self", subject="CN=props", validity_in_months=6)
    changed = certificates.update_certificate_policy("props", patch)
    assert changed.validity_in_months == 6
    assert certificates.get_certificate_policy("props").validity_in_months == 6


def test_create_disabled(
    served: Served, certificates: CertificateClient, credential: StaticCredential
) -> None:
    """enabled=False at create: the version comes out disabled, its key and secret inoperable."""
    cert = create(certificates, "born-off", enabled=False)
    assert cert.properties.enabled is False
    assert certificates.get_certificate("born-off").properties.enabled is False
    options = served.client_options()
    digest = hashlib.sha256(b"payload").digest()
    with (
        SecretClient(served.url, credential, **options) as secrets,
        KeyClient(served.url, credential, **options) as keys,
    ):
        with pytest.raises(HttpResponseError) as secret_refused:
            secrets.get_secret("born-off")
        assert secret_refused.value.status_code == 403
        with pytest.raises(HttpResponseError) as key_refused:
            keys.get_key("born-off")
        assert key_refused.value.status_code == 403
        key_id = f"{served.url}/keys/born-off/{cert.properties.version}"
        crypto = CryptographyClient(key_id, credential, **options)
        with pytest.raises(HttpResponseError) as sign_refused:
            crypto.sign(SignatureAlgorithm.es256, digest)
        assert sign_refused.value.status_code == 403

        certificates.update_certificate_properties("born-off", enabled=True)
        assert secrets.get_secret("born-off").value
        assert len(crypto.sign(SignatureAlgorithm.es256, digest).signature) == 64
    # The next version is created enabled (the default).
    assert create(certificates, "born-off").properties.enabled is True


def test_operation_get_cancel_and_delete(certificates: CertificateClient) -> None:
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=pending")  # waits for a merge
    poller = certificates.begin_create_certificate("pending", policy, **FAST)
    first = poller.result()
    assert isinstance(first, CertificateOperation) and first.status == "inProgress"
    op = certificates.get_certificate_operation("pending")
    assert op.status == "inProgress" and op.csr and op.issuer_name == "Unknown"
    cancelled = certificates.cancel_certificate_operation("pending")
    assert cancelled.cancellation_requested is True
    deleted = certificates.delete_certificate_operation("pending")
    assert deleted.status in ("cancelled", "inProgress")
    with pytest.raises(ResourceNotFoundError):
        certificates.get_certificate_operation("pending")


def test_merge_with_external_ca(certificates: CertificateClient) -> None:
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=merged", san_dns_names=["m.ex"])
    certificates.begin_create_certificate("merged", policy, **FAST).result()
    op = certificates.get_certificate_operation("merged")
    assert op.csr is not None
    ca = ExternalCa.make()

    with pytest.raises(HttpResponseError) as denied:
        certificates.merge_certificate("merged", [der(ca.cert)])
    assert denied.value.status_code == 400
    assert certificates.get_certificate_operation("merged").status == "inProgress"

    leaf = ca.sign_csr(op.csr)
    merged = certificates.merge_certificate("merged", [der(leaf), der(ca.cert)])
    assert merged.cer == der(leaf)
    assert certificates.get_certificate_operation("merged").status == "completed"


def test_import_pfx_and_pem(certificates: CertificateClient) -> None:
    ca = ExternalCa.make()
    pfx, pfx_cert = pfx_bundle(ca, "pfx-import", "s3cret")
    imported = certificates.import_certificate("pfx-import", pfx, password="s3cret")
    assert imported.cer == der(pfx_cert)
    assert imported.policy is not None and imported.policy.key_type == KeyType.rsa

    pem, pem_cert = pem_bundle(ca, "pem-import")
    policy = CertificatePolicy(
        issuer_name="Unknown", subject="CN=pem-import", content_type=CertificateContentType.pem
    )
    imported_pem = certificates.import_certificate("pem-import", pem, policy=policy)
    assert imported_pem.cer == der(pem_cert)
    assert imported_pem.policy is not None
    assert imported_pem.policy.content_type == CertificateContentType.pem


def test_delete_recover_purge(certificates: CertificateClient) -> None:
    create(certificates, "gone")
    deleted = certificates.begin_delete_certificate("gone", **FAST).result()
    assert deleted.recovery_id and deleted.deleted_on and deleted.scheduled_purge_date
    assert (deleted.scheduled_purge_date - deleted.deleted_on).days == 90
    assert certificates.get_deleted_certificate("gone").name == "gone"
    assert "gone" in {d.name for d in certificates.list_deleted_certificates()}
    with pytest.raises(ResourceNotFoundError):
        certificates.get_certificate("gone")
    with pytest.raises(ResourceExistsError) as taken:
        certificates.begin_create_certificate("gone", self_policy("gone"), **FAST)
    assert "ObjectIsDeletedButRecoverable" in str(taken.value)

    recovered = certificates.begin_recover_deleted_certificate("gone", **FAST).result()
    assert recovered.name == "gone"
    certificates.begin_delete_certificate("gone", **FAST).result()
    certificates.purge_deleted_certificate("gone")
    with pytest.raises(ResourceNotFoundError):
        certificates.get_deleted_certificate("gone")
    assert create(certificates, "gone").name == "gone"  # the name is free again


def test_backup_and_restore(certificates: CertificateClient) -> None:
    original = create(certificates, "saved")
    blob = certificates.backup_certificate("saved")
    assert isinstance(blob, bytes) and len(blob) > 100
    certificates.begin_delete_certificate("saved", **FAST).result()
    with pytest.raises(ResourceExistsError):
        certificates.restore_certificate_backup(blob)
    certificates.purge_deleted_certificate("saved")
    restored = certificates.restore_certificate_backup(blob)
    assert restored.name == "saved" and restored.cer == original.cer
    assert restored.properties.version != original.properties.version  # renamed: this
    # ledger used that version id before the purge
    with pytest.raises(ResourceExistsError):
        certificates.restore_certificate_backup(blob)


def test_contacts(certificates: CertificateClient) -> None:
    contacts = [
        CertificateContact(email="ops@example.com", name="Ops", phone="555-0100"),
        CertificateContact(email="sec@example.com"),
    ]
    stored = certificates.set_contacts(contacts)
    assert [c.email for c in stored] == ["ops@example.com", "sec@example.com"]
    assert [c.name for c in certificates.get_contacts()] == ["Ops", None]
    removed = certificates.delete_contacts()
    assert len(removed) == 2
    with pytest.raises(ResourceNotFoundError):
        certificates.get_contacts()


def test_issuers(certificates: CertificateClient) -> None:
    admin = AdministratorContact(first_name="Ada", last_name="L", email="ada@example.com")
    issuer = certificates.create_issuer(
        "corp-ca", "LocalCA", account_id="acct-1", password="pw", admin_contacts=[admin]
    )
    assert issuer.provider == "localca" and issuer.account_id == "acct-1"
    assert issuer.admin_contacts and issuer.admin_contacts[0].email == "ada@example.com"
    assert certificates.get_issuer("corp-ca").name == "corp-ca"
    assert "corp-ca" in {i.name for i in certificates.list_properties_of_issuers()}
    updated = certificates.update_issuer("corp-ca", enabled=False, organization_id="org-9")
    assert updated.enabled is False and updated.organization_id == "org-9"
    assert updated.account_id == "acct-1"
    certificates.update_issuer("corp-ca", enabled=True)

    policy = CertificatePolicy(issuer_name="corp-ca", subject="CN=via-ca", key_type=KeyType.ec)
    cert = certificates.begin_create_certificate("via-ca", policy, **FAST).result()
    assert isinstance(cert, KeyVaultCertificate)
    issued = x509.load_der_x509_certificate(cert.cer)
    assert issued.issuer.rfc4514_string() == "CN=certledger corp-ca CA"

    deleted = certificates.delete_issuer("corp-ca")
    assert deleted.name == "corp-ca"
    with pytest.raises(ResourceNotFoundError):
        certificates.get_issuer("corp-ca")


def test_secret_and_key_of_a_certificate(
    served: Served, certificates: CertificateClient, credential: StaticCredential
) -> None:
    cert = create(certificates, "managed")
    options = served.client_options()
    with SecretClient(served.url, credential, **options) as secrets:
        secret = secrets.get_secret("managed")
        assert secret.properties.managed is True
        assert secret.properties.content_type == CertificateContentType.pkcs12
        key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
        assert key is not None and leaf is not None
        assert der(leaf) == cert.cer
        by_version = secrets.get_secret("managed", cert.properties.version)
        _, same_leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(by_version.value), None)
        assert same_leaf == leaf
        with pytest.raises(HttpResponseError) as refused:
            secrets.set_secret("managed", "overwrite")
        assert refused.value.status_code == 409
        with pytest.raises(HttpResponseError) as forbidden:
            secrets.begin_delete_secret("managed")
        assert forbidden.value.status_code == 403

    with KeyClient(served.url, credential, **options) as keys:
        key_bundle = keys.get_key("managed")
        assert key_bundle.properties.managed is True and key_bundle.key.crv == "P-256"
        assert key_bundle.properties.version == cert.properties.version
        with pytest.raises(HttpResponseError) as refused_key:
            keys.create_ec_key("managed")
        assert refused_key.value.status_code == 409
        crypto = CryptographyClient(key_bundle, credential, **options)
        digest = hashlib.sha256(b"payload").digest()
        signed = crypto.sign(SignatureAlgorithm.es256, digest)
        assert len(signed.signature) == 64
        assert crypto.verify(SignatureAlgorithm.es256, digest, signed.signature).is_valid
        assert not crypto.verify(SignatureAlgorithm.es256, digest, bytes(64)).is_valid

        certificates.update_certificate_properties("managed", enabled=False)
        with pytest.raises(HttpResponseError) as disabled:
            crypto.sign(SignatureAlgorithm.es256, digest)
        assert disabled.value.status_code == 403
        certificates.update_certificate_properties("managed", enabled=True)
