"""Certificate profiles and distinguished names."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"

# DN attribute keys accepted in a profile subject.
NAME_ATTRIBUTES: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "STREET": NameOID.STREET_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "TITLE": NameOID.TITLE,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "SURNAME": NameOID.SURNAME,
    "UID": NameOID.USER_ID,
}

# Key Vault key usage names -> x509.KeyUsage arguments.
KEY_USAGES: dict[str, str] = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
_KEY_USAGES_LOWER = {name.lower(): arg for name, arg in KEY_USAGES.items()}


@dataclass(frozen=True)
class CertProfile:
    """What goes into a certificate or CSR, filled by the caller from its policy."""

    subject: list[tuple[str, str]]
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    ekus: tuple[str, ...] = (SERVER_AUTH, CLIENT_AUTH)
    key_usage: tuple[str, ...] = ("digitalSignature", "keyEncipherment")
    validity_months: int = 12

    def __post_init__(self) -> None:
        if isinstance(self.validity_months, bool) or not isinstance(self.validity_months, int):
            raise ValueError("validity_months must be an integer")
        if self.validity_months < 1:
            raise ValueError("validity_months must be at least 1")
        for key, _ in self.subject:
            _attribute_oid(key)
        key_usage_extension(self.key_usage)
        eku_extension(self.ekus)


def _attribute_oid(key: str) -> x509.ObjectIdentifier:
    try:
        return NAME_ATTRIBUTES[key.strip().upper()]
    except KeyError:
        raise ValueError(
            f"unsupported subject attribute {key!r}; expected one of {', '.join(NAME_ATTRIBUTES)}"
        ) from None


def to_x509_name(pairs: Iterable[tuple[str, str]]) -> x509.Name:
    """Build an x509.Name with one RDN per pair, in the order given."""
    rdns = []
    for key, value in pairs:
        oid = _attribute_oid(key)
        try:
            attribute = x509.NameAttribute(oid, value)
        except ValueError as exc:
            raise ValueError(f"invalid subject attribute {key}: {exc}") from None
        rdns.append(x509.RelativeDistinguishedName([attribute]))
    return x509.Name(rdns)


def key_usage_extension(names: Iterable[str]) -> x509.KeyUsage | None:
    """Map Key Vault key usage names to a KeyUsage value, or None when empty."""
    flags = dict.fromkeys(KEY_USAGES.values(), False)
    seen = False
    for name in names:
        try:
            flags[_KEY_USAGES_LOWER[name.lower()]] = True
        except KeyError:
            raise ValueError(
                f"unsupported key usage {name!r}; expected one of {', '.join(KEY_USAGES)}"
            ) from None
        seen = True
    if not seen:
        return None
    if (flags["encipher_only"] or flags["decipher_only"]) and not flags["key_agreement"]:
        raise ValueError("encipherOnly and decipherOnly require keyAgreement")
    return x509.KeyUsage(**flags)


def eku_extension(oids: Iterable[str]) -> x509.ExtendedKeyUsage | None:
    """Build an ExtendedKeyUsage from dotted OIDs, or None when empty."""
    usages = []
    for dotted in oids:
        try:
            usages.append(x509.ObjectIdentifier(dotted))
        except ValueError:
            raise ValueError(f"invalid extended key usage OID {dotted!r}") from None
    return x509.ExtendedKeyUsage(usages) if usages else None


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def upn_other_name(upn: str) -> x509.OtherName:
    """A Microsoft UPN as an OtherName holding a DER UTF8String."""
    raw = upn.encode("utf-8")
    return x509.OtherName(UPN_OID, b"\x0c" + _der_length(len(raw)) + raw)


def subject_alternative_names(profile: CertProfile) -> x509.SubjectAlternativeName | None:
    """The SAN extension for a profile, or None when it has no alternative names."""
    general: list[x509.GeneralName] = []
    try:
        general.extend(x509.DNSName(name) for name in profile.dns_names)
        general.extend(x509.RFC822Name(email) for email in profile.emails)
        general.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in profile.ip_addresses)
    except ValueError as exc:
        raise ValueError(f"invalid subject alternative name: {exc}") from None
    general.extend(upn_other_name(upn) for upn in profile.upns)
    return x509.SubjectAlternativeName(general) if general else None


def profile_extensions(
    profile: CertProfile, subject: x509.Name | None = None
) -> list[tuple[x509.ExtensionType, bool]]:
    """SAN, KeyUsage (critical) and EKU for a profile, as (value, critical) pairs.

    ``subject`` is the name the certificate will carry; the profile's by default.
    """
    if subject is None:
        subject = to_x509_name(profile.subject)
    san = subject_alternative_names(profile)
    if len(subject) == 0 and san is None:
        raise ValueError("a certificate needs a subject or at least one subject alternative name")
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if san is not None:
        # RFC 5280: SAN is critical when the subject is empty.
        extensions.append((san, len(subject) == 0))
    key_usage = key_usage_extension(profile.key_usage)
    if key_usage is not None:
        extensions.append((key_usage, True))
    eku = eku_extension(profile.ekus)
    if eku is not None:
        extensions.append((eku, False))
    return extensions
