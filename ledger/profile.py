"""Translate between policies and X.509 facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ledger.domain.policy import CertificatePolicy, format_dn, parse_dn
from ledger.pki.issue import add_months
from ledger.pki.keygen import key_description
from ledger.pki.names import KEY_USAGES, UPN_OID, CertProfile

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
        ip_addresses=tuple(sans.ip_addresses or ()) if sans else (),
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
        ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
        if dns:
            sans["dns_names"] = dns
        if emails:
            sans["emails"] = emails
        if ips:
            sans["ip_addresses"] = ips
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


# Tolerated difference between the requested and the issued validity (backdating, rounding).
VALIDITY_TOLERANCE = timedelta(days=1)


def _key_usage_names(cert: x509.Certificate) -> list[str]:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = []
    for name, attr in KEY_USAGES.items():
        if attr in ("encipher_only", "decipher_only") and not ku.key_agreement:
            continue
        if getattr(ku, attr):
            names.append(name)
    return sorted(names)


def _eku_oids(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return sorted(oid.dotted_string for oid in ext)


def _san_values(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], []
    upns = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == UPN_OID and other.value[:1] == b"\x0c":
            # DER UTF8String: tag, length (short or long form), bytes.
            body = other.value[1:]
            skip = 1 + (body[0] & 0x7F if body[0] & 0x80 else 0)
            upns.append(body[skip:].decode("utf-8", "replace"))
    return (
        sorted(v.lower() for v in san.get_values_for_type(x509.DNSName)),
        sorted(san.get_values_for_type(x509.RFC822Name)),
        sorted(upns),
    )


def _ip_values(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def ca_changes(profile: CertProfile, cert: x509.Certificate) -> dict[str, dict[str, Any]]:
    """What an issued certificate differs in from the requested profile, aspect by aspect.

    Each changed aspect maps to ``{"requested": ..., "issued": ...}``; an empty dict means
    the CA honoured the request (subject, SANs, key usage, EKUs and validity).
    """
    changes: dict[str, dict[str, Any]] = {}

    def compare(aspect: str, requested: Any, issued: Any) -> None:
        if requested != issued:
            changes[aspect] = {"requested": requested, "issued": issued}

    compare("subject", format_dn(profile.subject), format_dn(subject_pairs(cert.subject)))
    dns, emails, upns = _san_values(cert)
    compare("dns_names", sorted(n.lower() for n in profile.dns_names), dns)
    compare("emails", sorted(profile.emails), emails)
    compare("upns", sorted(profile.upns), upns)
    compare("ip_addresses", sorted(profile.ip_addresses), _ip_values(cert))
    compare("key_usage", sorted(key_usage_names(profile.key_usage)), _key_usage_names(cert))
    compare("ekus", sorted(profile.ekus), _eku_oids(cert))

    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    wanted = add_months(not_before, profile.validity_months) - not_before
    got = not_after - not_before
    if abs(got - wanted) > VALIDITY_TOLERANCE:
        changes["validity"] = {
            "requested": {"months": profile.validity_months, "days": wanted.days},
            "issued": {
                "not_before": not_before.isoformat(),
                "not_after": not_after.isoformat(),
                "days": got.days,
            },
        }
    return changes


def key_usage_names(names: tuple[str, ...]) -> list[str]:
    """Key Vault key usage names in their canonical spelling."""
    canonical = {name.lower(): name for name in KEY_USAGES}
    return [canonical.get(n.lower(), n) for n in names]
