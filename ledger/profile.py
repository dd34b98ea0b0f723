"""Translate between policies and X.509 facts."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from ledger.domain.policy import CertificatePolicy, format_dn, parse_dn
from ledger.pki.keygen import key_description
from ledger.pki.names import CertProfile

_NAME_KEYS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COUNTRY_NAME: "C",
    NameOID.EMAIL_ADDRESS: "EMAILADDRESS",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.TITLE: "TITLE",
    NameOID.GIVEN_NAME: "GIVENNAME",
    NameOID.SURNAME: "SURNAME",
    NameOID.USER_ID: "UID",
}


def profile_from_policy(policy: CertificatePolicy) -> CertProfile:
    x = policy.x509_props
    sans = x.sans
    return CertProfile(
        subject=parse_dn(x.subject) if x.subject else [],
        dns_names=tuple(sans.dns_names) if sans else (),
        emails=tuple(sans.emails) if sans else (),
        upns=tuple(sans.upns) if sans else (),
        ekus=tuple(x.ekus),
        key_usage=tuple(x.key_usage),
        validity_months=x.validity_months,
    )


def subject_pairs(name: x509.Name) -> list[tuple[str, str]]:
    pairs = []
    for attr in name:
        key = _NAME_KEYS.get(attr.oid)
        if key is not None and isinstance(attr.value, str):
            pairs.append((key, attr.value))
    return pairs


def policy_from_certificate(cert: x509.Certificate, content_type: str) -> CertificatePolicy:
    """The policy Key Vault infers for an imported certificate."""
    kty, size, crv = key_description(cert.public_key())
    sans: dict[str, list[str]] = {}
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = ext.get_values_for_type(x509.DNSName)
        emails = ext.get_values_for_type(x509.RFC822Name)
        if dns:
            sans["dns_names"] = dns
        if emails:
            sans["emails"] = emails
    except x509.ExtensionNotFound:
        pass
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    x509_props: dict[str, object] = {
        "subject": format_dn(subject_pairs(cert.subject)),
        "validity_months": min(1200, max(1, round(lifetime.days / 30.4))),
    }
    if sans:
        x509_props["sans"] = sans
    key_props: dict[str, object] = {"kty": kty, "exportable": True, "reuse_key": False}
    if kty == "RSA":
        key_props["key_size"] = size
    else:
        key_props["crv"] = crv
    return CertificatePolicy.from_kv_json(
        {
            "key_props": key_props,
            "secret_props": {"contentType": content_type},
            "x509_props": x509_props,
            "issuer": {"name": "Unknown"},
        }
    )
