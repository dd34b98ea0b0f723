"""Request and response bodies, with Key Vault's JSON names (they make the OpenAPI document).

Request models validate what FastAPI parses; responses are rendered by the
queries and only described here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.policy import CertificatePolicy

Tags = dict[str, str]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class CertificateAttributes(_In):
    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


class CertificateCreateParameters(_In):
    policy: CertificatePolicy | None = None
    attributes: CertificateAttributes | None = None
    tags: Tags | None = None
    preserveCertOrder: bool | None = None


class CertificateImportParameters(_In):
    value: str = Field(description="Base64 of a PFX/PKCS#12 file, or of a PEM (key + chain).")
    pwd: str | None = None
    policy: CertificatePolicy | None = None
    attributes: CertificateAttributes | None = None
    tags: Tags | None = None
    preserveCertOrder: bool | None = None


class CertificateMergeParameters(_In):
    x5c: list[str] = Field(min_length=1, description="Base64 DER certificates: leaf first.")
    attributes: CertificateAttributes | None = None
    tags: Tags | None = None


class CertificateUpdateParameters(_In):
    policy: dict[str, Any] | None = Field(default=None, description="A partial policy to merge.")
    attributes: CertificateAttributes | None = None
    tags: Tags | None = None


class CertificateOperationUpdateParameter(_In):
    cancellation_requested: bool


class CertificateRestoreParameters(_In):
    value: str = Field(description="The backup blob (base64url).")


class IssuerCredentials(_In):
    account_id: str | None = None
    pwd: str | None = None


class AdministratorDetails(_In):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class OrganizationDetails(_In):
    id: str | None = None
    admin_details: list[AdministratorDetails] | None = None


class IssuerAttributes(_In):
    enabled: bool | None = None


class CertificateIssuerSetParameters(_In):
    provider: str
    credentials: IssuerCredentials | None = None
    org_details: OrganizationDetails | None = None
    attributes: IssuerAttributes | None = None


class CertificateIssuerUpdateParameters(_In):
    provider: str | None = None
    credentials: IssuerCredentials | None = None
    org_details: OrganizationDetails | None = None
    attributes: IssuerAttributes | None = None


class Contact(_In):
    email: str
    name: str | None = None
    phone: str | None = None


class ContactsParameters(_In):
    contacts: list[Contact]


class KeySignParameters(_In):
    alg: str = Field(description="ES256, ES384, ES512, ES256K, RS256 ... PS512.")
    value: str = Field(description="The digest to sign (base64url).")


class KeyVerifyParameters(_In):
    alg: str
    digest: str = Field(description="The signed digest (base64url).")
    value: str = Field(description="The signature (base64url).")


# -- responses (described, not enforced) ----------------------------------


class Attributes(_Out):
    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None
    created: int | None = None
    updated: int | None = None
    recoveryLevel: str | None = None
    recoverableDays: int | None = None


class CertificateBundle(_Out):
    id: str
    kid: str | None = None
    sid: str | None = None
    x5t: str | None = None
    cer: str | None = None
    attributes: Attributes | None = None
    tags: Tags | None = None
    policy: dict[str, Any] | None = None


class DeletedCertificateBundle(CertificateBundle):
    recoveryId: str | None = None
    deletedDate: int | None = None
    scheduledPurgeDate: int | None = None


class CertificateItem(_Out):
    id: str
    x5t: str | None = None
    attributes: Attributes | None = None
    tags: Tags | None = None


class CertificateListResult(_Out):
    value: list[CertificateItem]
    nextLink: str | None = None


class DeletedCertificateItem(CertificateItem):
    recoveryId: str | None = None
    deletedDate: int | None = None
    scheduledPurgeDate: int | None = None


class DeletedCertificateListResult(_Out):
    value: list[DeletedCertificateItem]
    nextLink: str | None = None


class ErrorDetail(_Out):
    code: str
    message: str
    innererror: dict[str, Any] | None = None


class CertificateOperation(_Out):
    id: str
    issuer: dict[str, Any] | None = None
    csr: str | None = None
    cancellation_requested: bool | None = None
    status: str | None = None
    status_details: str | None = None
    error: ErrorDetail | None = None
    target: str | None = None
    request_id: str | None = None


class IssuerBundle(_Out):
    id: str
    provider: str | None = None
    credentials: dict[str, Any] | None = None
    org_details: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None


class IssuerItem(_Out):
    id: str
    provider: str | None = None


class IssuerListResult(_Out):
    value: list[IssuerItem]
    nextLink: str | None = None


class Contacts(_Out):
    id: str | None = None
    contacts: list[dict[str, Any]]


class BackupCertificateResult(_Out):
    value: str


class KeyBundle(_Out):
    key: dict[str, Any]
    attributes: Attributes | None = None
    tags: Tags | None = None
    managed: bool | None = None


class SecretBundle(_Out):
    value: str
    id: str
    contentType: str | None = None
    attributes: Attributes | None = None
    tags: Tags | None = None
    kid: str | None = None
    managed: bool | None = None


class KeyOperationResult(_Out):
    kid: str
    value: str


class KeyVerifyResult(_Out):
    value: bool


class KeyVaultError(_Out):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": KeyVaultError, "description": text}
    for status, text in (
        (400, "BadParameter"),
        (401, "Unauthorized (with the bearer challenge)"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
    )
}
