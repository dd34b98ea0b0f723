"""Certificate policy models speaking Azure Key Vault's policy JSON.

Python field names are Key Vault's REST JSON names, so ``from_kv_json`` and
``to_kv_json`` exchange Key Vault policy documents directly.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "ActionType",
    "CertificatePolicy",
    "ContentType",
    "CurveName",
    "IssuerParameters",
    "KeyProperties",
    "KeyType",
    "KeyUsage",
    "LifetimeAction",
    "LifetimeActionType",
    "LifetimeTrigger",
    "PolicyAttributes",
    "PolicyError",
    "SecretProperties",
    "SubjectAlternativeNames",
    "X509Properties",
    "format_dn",
    "parse_dn",
    "policy_from_options",
]

KeyType = Literal["RSA", "RSA-HSM", "EC", "EC-HSM"]
CurveName = Literal["P-256", "P-384", "P-521", "P-256K"]
ContentType = Literal["application/x-pkcs12", "application/x-pem-file"]
KeyUsage = Literal[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
]
ActionType = Literal["EmailContacts", "AutoRenew"]

PKCS12: ContentType = "application/x-pkcs12"
PEM: ContentType = "application/x-pem-file"
RSA_KEY_SIZES = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE = 2048
DEFAULT_CURVE: CurveName = "P-256"
DEFAULT_EKUS = ("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2")
DEFAULT_KEY_USAGE: tuple[KeyUsage, ...] = ("digitalSignature", "keyEncipherment")
DEFAULT_LIFETIME_PERCENTAGE = 80
MAX_SANS = 100
DAYS_PER_MONTH = 28  # conservative month length for days_before_expiry checks

_RSA_TYPES = ("RSA", "RSA-HSM")
_EC_TYPES = ("EC", "EC-HSM")
_HSM_TYPES = ("RSA-HSM", "EC-HSM")


class PolicyError(ValueError):
    """A certificate policy is malformed; ``errors`` holds (field path, problem) pairs."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[tuple[str, str], ...] = tuple(errors)


# ---------------------------------------------------------------------------
# Small helpers


def _show(value: object, limit: int = 80) -> str:
    """A short repr of untrusted input for error messages."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<{value.bit_length()}-bit integer>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # huge nested ints, deep nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(message: str, *loc: str | int) -> NoReturn:
    """Raise a validation error carrying a message and a path below the current model."""
    raise PydanticCustomError("policy", "{detail}", {"detail": message, "loc": loc})


def _bad_chars(value: str) -> bool:
    """True if value holds control characters or lone surrogates."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF for c in value)


_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII | re.IGNORECASE)
_LOCAL_PART_RE = re.compile(r"[\x21-\x3f\x41-\x7e]{1,64}")  # printable ASCII except "@"
_OID_RE = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_ISSUER_RE = re.compile(r"[0-9A-Za-z-]{1,127}")


def _is_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(_LABEL_RE.fullmatch(label) for label in name.split("."))


def _is_dns_name(name: str) -> bool:
    if len(name) > 253:
        return False
    return _is_hostname(name[2:] if name.startswith("*.") else name)


def _is_mailbox(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return (
        bool(at)
        and len(value) <= 254
        and _LOCAL_PART_RE.fullmatch(local) is not None
        and _is_hostname(domain)
    )


def _is_oid(value: str) -> bool:
    # Also keeps within what X.509 encoders take: first arcs 0..2 / 0..39, <= 63 DER bytes.
    if len(value) > 200 or not _OID_RE.fullmatch(value):
        return False
    arcs = [int(a) for a in value.split(".")]
    if arcs[0] < 2 and arcs[1] >= 40:
        return False
    encoded = [40 * arcs[0] + arcs[1], *arcs[2:]]
    if any(a >= 2**64 for a in encoded):
        return False
    return sum(max(1, -(-a.bit_length() // 7)) for a in encoded) <= 63


def _check_dns_name(value: str) -> str:
    if not _is_dns_name(value):
        _fail(f"{_show(value)} is not a valid DNS name")
    return value.lower()


def _check_ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        _fail(f"{_show(value)} is not a valid IP address")


def _check_mailbox(value: str) -> str:
    if not _is_mailbox(value):
        _fail(f"{_show(value)} is not a valid local@domain address")
    return value


def _check_oid(value: str) -> str:
    if not _is_oid(value):
        _fail(f"{_show(value)} is not a valid dotted-decimal OID")
    return value


def _first_duplicate(items: Sequence[str]) -> int | None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item in seen:
            return index
        seen.add(item)
    return None


DnsName = Annotated[str, AfterValidator(_check_dns_name)]
Mailbox = Annotated[str, AfterValidator(_check_mailbox)]
IpAddress = Annotated[str, AfterValidator(_check_ip_address)]
Oid = Annotated[str, AfterValidator(_check_oid)]


# ---------------------------------------------------------------------------
# Distinguished names

_DN_KEYS = {
    "CN": "CN",
    "O": "O",
    "OU": "OU",
    "L": "L",
    "ST": "ST",
    "S": "ST",
    "C": "C",
    "E": "EMAILADDRESS",
    "EMAILADDRESS": "EMAILADDRESS",
    "DC": "DC",
    "STREET": "STREET",
    "SERIALNUMBER": "SERIALNUMBER",
    "T": "TITLE",
    "TITLE": "TITLE",
    "G": "GIVENNAME",
    "GIVENNAME": "GIVENNAME",
    "SN": "SURNAME",
    "SURNAME": "SURNAME",
    "UID": "UID",
}
_DN_WS = " \t"
_DN_SEPARATORS = ",;"
_DN_ESCAPABLE = frozenset(',+"\\=;<># ')
_DN_MUST_ESCAPE = frozenset(',+"\\;<>')
_HEX = frozenset("0123456789abcdefABCDEF")
_PRINTABLE_STRING_RE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")
_CN_MAX_BYTES = 64


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _DN_WS:
        i += 1
    return i


def _is_hexpair(text: str, j: int) -> bool:
    return j + 1 < len(text) and text[j] in _HEX and text[j + 1] in _HEX


def _read_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape starting at the backslash text[i]."""
    if i + 1 >= len(text):
        raise PolicyError("dangling '\\' at the end of the name")
    nxt = text[i + 1]
    if nxt in _DN_ESCAPABLE:
        return nxt, i + 2
    if _is_hexpair(text, i + 1):
        raw = bytearray()
        while i < len(text) and text[i] == "\\" and _is_hexpair(text, i + 1):
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        try:
            return raw.decode("utf-8"), i
        except UnicodeDecodeError:
            raise PolicyError("hex escapes do not form valid UTF-8") from None
    raise PolicyError(f"invalid escape {_show(chr(92) + nxt)}")


def _read_value(text: str, i: int) -> tuple[str, int]:
    """Read one attribute value starting after '='; returns (value, index of separator/end)."""
    n = len(text)
    i = _skip_ws(text, i)
    if i < n and text[i] == '"':
        i += 1
        quoted: list[str] = []
        while True:
            if i >= n:
                raise PolicyError("unterminated quoted value")
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                decoded, i = _read_escape(text, i)
                quoted.append(decoded)
                continue
            quoted.append(c)
            i += 1
        i = _skip_ws(text, i)
        if i < n and text[i] not in _DN_SEPARATORS:
            raise PolicyError("unexpected text after a quoted value")
        return "".join(quoted), i
    chars: list[tuple[str, bool]] = []  # (text, escaped)
    while i < n and text[i] not in _DN_SEPARATORS:
        c = text[i]
        if c == "\\":
            decoded, i = _read_escape(text, i)
            chars.append((decoded, True))
            continue
        if c == "+":
            raise PolicyError("unescaped '+' in a value (multi-valued RDNs are not supported)")
        if c == '"':
            raise PolicyError("unescaped '\"' inside a value")
        chars.append((c, False))
        i += 1
    while chars and not chars[-1][1] and chars[-1][0] in _DN_WS:
        chars.pop()
    return "".join(c for c, _ in chars), i


def _normalise_pair(raw_key: str, value: str) -> tuple[str, str]:
    """Canonical key name and checked value of one DN attribute."""
    if not raw_key:
        raise PolicyError("missing attribute name before '='")
    key = _DN_KEYS.get(raw_key.upper()) if raw_key.isascii() else None
    if key is None:
        raise PolicyError(f"unknown attribute {_show(raw_key)}")
    if not value:
        raise PolicyError(f"empty value for {key}")
    if _bad_chars(value):
        raise PolicyError(f"{key} value contains control characters")
    if key == "C":
        if not (len(value) == 2 and value.isascii() and value.isalpha()):
            raise PolicyError(f"C must be exactly two letters, not {_show(value)}")
        value = value.upper()
    elif key == "CN" and len(value.encode("utf-8")) > _CN_MAX_BYTES:
        raise PolicyError(f"CN is longer than {_CN_MAX_BYTES} characters")
    elif key in ("EMAILADDRESS", "DC") and not value.isascii():
        raise PolicyError(f"{key} value must be ASCII")
    elif key == "SERIALNUMBER" and not _PRINTABLE_STRING_RE.fullmatch(value):
        raise PolicyError("SERIALNUMBER may only hold letters, digits, spaces and '()+,-./:=?")
    return key, value


def parse_dn(dn: str) -> list[tuple[str, str]]:
    """Parse an X.500 name such as ``"CN=www.contoso.com, O=Contoso"`` into (KEY, value) pairs.

    Pairs are separated by ',' or ';'; values may use RFC 4514 escapes or double
    quotes. Keys come back in canonical upper-case form. An empty name gives [].
    """
    if not isinstance(dn, str):
        raise PolicyError(f"a distinguished name must be a string, not {type(dn).__name__}")
    n = len(dn)
    i = _skip_ws(dn, 0)
    pairs: list[tuple[str, str]] = []
    if i == n:
        return pairs
    while True:
        start = i
        while i < n and dn[i] not in "=" + _DN_SEPARATORS:
            i += 1
        if i == n or dn[i] != "=":
            piece = dn[start:i].strip(_DN_WS)
            if not piece:
                raise PolicyError("empty component in the name")
            raise PolicyError(f"{_show(piece)} is not a KEY=value pair")
        raw_key = dn[start:i].strip(_DN_WS)
        value, i = _read_value(dn, i + 1)
        pairs.append(_normalise_pair(raw_key, value))
        if i == n:
            return pairs
        i = _skip_ws(dn, i + 1)
        if i == n:
            raise PolicyError("empty component at the end of the name")


def _escape_dn_value(value: str) -> str:
    last = len(value) - 1
    out: list[str] = []
    for index, c in enumerate(value):
        if c in _DN_MUST_ESCAPE or (index == 0 and c in "# ") or (index == last and c in _DN_WS):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def format_dn(pairs: Iterable[tuple[str, str]]) -> str:
    """Canonical text of (key, value) pairs, e.g. ``"CN=www.contoso.com, O=Contoso"``.

    Keys are normalised and values checked as in ``parse_dn``; the result parses back
    to the same pairs.
    """
    parts: list[str] = []
    for raw_key, raw_value in pairs:
        key, value = _normalise_pair(raw_key, raw_value)
        parts.append(f"{key}={_escape_dn_value(value)}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# Models


_CURVE_BITS = {"P-256": 256, "P-256K": 256, "P-384": 384, "P-521": 521}


class _KvModel(BaseModel):
    """Frozen, strict model that treats JSON nulls as absent and drops read-only fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    READ_ONLY: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _clean_input(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in data:
            if not isinstance(key, str):
                _fail(f"field name {_show(key)} is not a string")
        cleaned = {k: v for k, v in data.items() if v is not None and k not in cls.READ_ONLY}
        return cls._fill_defaults(cleaned)

    @classmethod
    def _fill_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data


class KeyProperties(_KvModel):
    """``key_props``: the certificate's key."""

    exportable: bool = True
    kty: KeyType = "RSA"
    key_size: int | None = None
    reuse_key: bool = False
    crv: CurveName | None = None

    @classmethod
    def _fill_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        kty = data.get("kty", "RSA")
        if kty in _HSM_TYPES:
            data.setdefault("exportable", False)  # an HSM key never leaves the HSM
        if kty in _RSA_TYPES:
            data.setdefault("key_size", DEFAULT_RSA_KEY_SIZE)
        elif kty in _EC_TYPES:
            # Key Vault echoes an EC key's size beside its curve: accept it when they agree.
            crv = data.get("crv")
            if isinstance(crv, str) and data.get("key_size") == _CURVE_BITS.get(crv, -1):
                del data["key_size"]
            data.setdefault("crv", DEFAULT_CURVE)
        return data

    @model_validator(mode="after")
    def _check_key(self) -> KeyProperties:
        if self.kty in _HSM_TYPES and self.exportable:
            _fail(
                f"cannot be true for an {self.kty} key: its private key never leaves the HSM, "
                "so the secret holds the certificate chain only",
                "exportable",
            )
        if self.kty in _RSA_TYPES:
            if self.key_size not in RSA_KEY_SIZES:
                allowed = ", ".join(str(s) for s in RSA_KEY_SIZES)
                _fail(
                    f"{_show(self.key_size)} is not an allowed RSA key size ({allowed})",
                    "key_size",
                )
            if self.crv is not None:
                _fail(f"cannot be set for an {self.kty} key (use key_size)", "crv")
        else:
            if self.key_size is not None:
                _fail(f"cannot be set for an {self.kty} key (use crv)", "key_size")
            if self.crv is None:  # pragma: no cover - filled by _fill_defaults
                _fail(f"a curve is required for an {self.kty} key", "crv")
        return self

    @property
    def is_ec(self) -> bool:
        return self.kty in _EC_TYPES


class SecretProperties(_KvModel):
    """``secret_props``: how the certificate is exported as a secret."""

    contentType: ContentType = PKCS12


class SubjectAlternativeNames(_KvModel):
    """``x509_props.sans``."""

    emails: list[Mailbox] = Field(default_factory=list, max_length=MAX_SANS)
    dns_names: list[DnsName] = Field(default_factory=list, max_length=MAX_SANS)
    upns: list[Mailbox] = Field(default_factory=list, max_length=MAX_SANS)
    # A certledger extension (Key Vault's policy has no IP SANs); absent unless given.
    ip_addresses: list[IpAddress] | None = Field(default=None, max_length=MAX_SANS)

    @field_validator("dns_names")
    @classmethod
    def _unique_dns_names(cls, value: list[str]) -> list[str]:
        dup = _first_duplicate(value)
        if dup is not None:
            _fail(f"duplicate DNS name {_show(value[dup])}", dup)
        return value

    @property
    def is_empty(self) -> bool:
        return not (self.emails or self.dns_names or self.upns or self.ip_addresses)


class X509Properties(_KvModel):
    """``x509_props``: subject, SANs, usages and validity."""

    # Key Vault reports basic_constraints; a leaf is never a CA, so it is not settable.
    READ_ONLY: ClassVar[frozenset[str]] = frozenset({"basic_constraints"})

    subject: str = ""
    sans: SubjectAlternativeNames | None = None
    ekus: list[Oid] = Field(default_factory=lambda: list(DEFAULT_EKUS))
    key_usage: list[KeyUsage] = Field(default_factory=lambda: list(DEFAULT_KEY_USAGE))
    validity_months: int = Field(default=12, ge=1, le=1200)

    @field_validator("subject")
    @classmethod
    def _normalise_subject(cls, value: str) -> str:
        try:
            return format_dn(parse_dn(value))
        except PolicyError as exc:
            _fail(f"{exc} in subject {_show(value)}")

    @field_validator("key_usage")
    @classmethod
    def _unique_key_usage(cls, value: list[KeyUsage]) -> list[KeyUsage]:
        dup = _first_duplicate(value)
        if dup is not None:
            _fail(f"duplicate key usage {_show(value[dup])}", dup)
        return value

    @model_validator(mode="after")
    def _check_names(self) -> X509Properties:
        if not self.subject and (self.sans is None or self.sans.is_empty):
            _fail("a subject or at least one subject alternative name is required", "subject")
        return self


class LifetimeTrigger(_KvModel):
    """``lifetime_actions[].trigger``: exactly one of the two fields."""

    lifetime_percentage: int | None = Field(default=None, ge=1, le=99)
    days_before_expiry: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> LifetimeTrigger:
        if (self.lifetime_percentage is None) == (self.days_before_expiry is None):
            _fail("exactly one of lifetime_percentage or days_before_expiry is required")
        return self


class LifetimeActionType(_KvModel):
    """``lifetime_actions[].action``."""

    action_type: ActionType


class LifetimeAction(_KvModel):
    """One entry of ``lifetime_actions``."""

    trigger: LifetimeTrigger
    action: LifetimeActionType


class IssuerParameters(_KvModel):
    """``issuer``: "Self", "Unknown" (manual) or the name of an issuer object."""

    name: str = "Unknown"
    cty: str | None = Field(default=None, min_length=1, max_length=255)
    cert_transparency: bool | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _ISSUER_RE.fullmatch(value):
            _fail(
                f"{_show(value)} is not a valid issuer name "
                "(Self, Unknown, or 1-127 letters, digits and hyphens)"
            )
        lowered = value.lower()
        if lowered == "self":
            return "Self"
        if lowered == "unknown":
            return "Unknown"
        return value

    @field_validator("cty")
    @classmethod
    def _check_cty(cls, value: str | None) -> str | None:
        if value is not None and _bad_chars(value):
            _fail("cty contains control characters")
        return value


class PolicyAttributes(_KvModel):
    """``attributes``; Key Vault's read-only timestamps and recovery fields are ignored."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset(
        {"created", "updated", "recoveryLevel", "recoverableDays", "nbf", "exp"}
    )

    enabled: bool = True


def _default_lifetime_actions(issuer: object) -> list[dict[str, Any]]:
    name: object = None
    if isinstance(issuer, IssuerParameters):
        name = issuer.name
    elif isinstance(issuer, dict):
        name = issuer.get("name")
    manual = name is None or (isinstance(name, str) and name.lower() == "unknown")
    action: ActionType = "EmailContacts" if manual else "AutoRenew"
    return [
        {
            "trigger": {"lifetime_percentage": DEFAULT_LIFETIME_PERCENTAGE},
            "action": {"action_type": action},
        }
    ]


def _plain(value: Any) -> Any:
    """Copy JSON-like data, turning any Mapping into a dict."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _merge(base: dict[str, Any], patch: Mapping[Any, Any]) -> dict[str, Any]:
    """JSON merge patch: objects merge recursively, null removes, anything else replaces."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = _plain(value)
    return out


_ERROR_TEXT = {
    "extra_forbidden": "unknown field",
    "missing": "field required",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "invalid_key": "field names must be strings",
}


def _path(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "policy"


def _policy_error(exc: ValidationError) -> PolicyError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc: tuple[object, ...] = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "policy":
            loc += tuple(ctx.get("loc", ()))
            text = str(ctx.get("detail", err["msg"]))
        elif err["type"] in _ERROR_TEXT:
            text = _ERROR_TEXT[err["type"]]
            if err["type"] not in ("extra_forbidden", "missing"):
                text += f" (got {_show(err['input'])})"
        else:
            text = f"{err['msg']} (got {_show(err['input'])})"
        problems.append((_path(loc), text))
    return PolicyError("; ".join(f"{p}: {t}" for p, t in problems), problems)


class CertificatePolicy(_KvModel):
    """A Key Vault certificate policy."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset({"id"})

    key_props: KeyProperties = Field(default_factory=KeyProperties)
    secret_props: SecretProperties = Field(default_factory=SecretProperties)
    x509_props: X509Properties
    lifetime_actions: list[LifetimeAction] = Field(default_factory=list)
    issuer: IssuerParameters = Field(default_factory=IssuerParameters)
    attributes: PolicyAttributes = Field(default_factory=PolicyAttributes)

    @classmethod
    def _fill_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "lifetime_actions" not in data:
            data["lifetime_actions"] = _default_lifetime_actions(data.get("issuer"))
        return data

    @model_validator(mode="after")
    def _check_actions(self) -> CertificatePolicy:
        max_days = self.x509_props.validity_months * DAYS_PER_MONTH
        seen: set[str] = set()
        for index, item in enumerate(self.lifetime_actions):
            kind = item.action.action_type
            if kind in seen:
                _fail(
                    f"more than one {kind} action",
                    "lifetime_actions",
                    index,
                    "action",
                    "action_type",
                )
            seen.add(kind)
            if kind == "AutoRenew" and self.is_manual:
                _fail(
                    "AutoRenew is not possible with issuer 'Unknown' (use EmailContacts)",
                    "lifetime_actions",
                    index,
                    "action",
                    "action_type",
                )
            days = item.trigger.days_before_expiry
            if days is not None and days >= max_days:
                _fail(
                    f"{_show(days)} days must be less than the validity period "
                    f"({self.x509_props.validity_months} months = {max_days} days)",
                    "lifetime_actions",
                    index,
                    "trigger",
                    "days_before_expiry",
                )
        return self

    @classmethod
    def from_kv_json(cls, data: Mapping[str, Any] | str | bytes) -> CertificatePolicy:
        """Validate Key Vault policy JSON (a mapping or JSON text); raises only PolicyError."""
        try:
            if isinstance(data, str | bytes | bytearray):
                data = json.loads(data)
            return cls.model_validate(_plain(data))
        except ValidationError as exc:
            raise _policy_error(exc) from None
        except RecursionError:
            raise PolicyError(
                "policy: nested too deeply", [("policy", "nested too deeply")]
            ) from None
        except ValueError as exc:  # JSON syntax, encoding, oversized numbers
            msg = f"not valid JSON ({_show(str(exc), 200)})"
            raise PolicyError(f"policy: {msg}", [("policy", msg)]) from None

    def to_kv_json(self) -> dict[str, Any]:
        """Key Vault JSON with every default filled in and no nulls."""
        return self.model_dump(mode="json", exclude_none=True)

    @cached_property
    def _fingerprint(self) -> str:
        canonical = json.dumps(self.to_kv_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def fingerprint(self) -> str:
        """Hex SHA-256 of the canonical JSON form."""
        return self._fingerprint

    def merged(self, patch: Mapping[str, Any]) -> CertificatePolicy:
        """Apply a partial policy (PATCH body): deep merge, null removes a field, then validate."""
        if not isinstance(patch, Mapping):
            msg = f"a policy update must be a JSON object (got {_show(patch)})"
            raise PolicyError(f"policy: {msg}", [("policy", msg)])
        try:
            combined = _merge(self.to_kv_json(), patch)
        except RecursionError:
            raise PolicyError(
                "policy: nested too deeply", [("policy", "nested too deeply")]
            ) from None
        return type(self).from_kv_json(combined)

    @property
    def issuer_name(self) -> str:
        return self.issuer.name

    @property
    def is_self_signed(self) -> bool:
        return self.issuer.name.lower() == "self"

    @property
    def is_manual(self) -> bool:
        return self.issuer.name.lower() == "unknown"


_CONTENT_TYPE_ALIASES: dict[str, str] = {
    "pem": PEM,
    "pkcs12": PKCS12,
    "pfx": PKCS12,
    "p12": PKCS12,
}


def policy_from_options(
    *,
    subject: str | None,
    sans: Sequence[str],
    kty: str | None,
    size: int | None,
    curve: str | None,
    validity_months: int | None,
    issuer: str | None,
    content_type: str | None,
) -> CertificatePolicy:
    """Build a policy from CLI options; a SAN containing '@' is an email, else a DNS name.

    Options left as None take Key Vault's defaults; a curve without kty implies EC.
    kty and curve are case-insensitive; content_type also accepts pem/pkcs12/pfx/p12.
    """
    key_props: dict[str, Any] = {}
    if kty is not None:
        key_props["kty"] = kty.upper()
    elif curve is not None:
        key_props["kty"] = "EC"
    if size is not None:
        key_props["key_size"] = size
    if curve is not None:
        key_props["crv"] = curve.upper()
    san_list = [sans] if isinstance(sans, str) else list(sans)
    emails = [s.strip() for s in san_list if "@" in s]
    dns_names = [s.strip() for s in san_list if "@" not in s]
    x509: dict[str, Any] = {"subject": subject or ""}
    if emails or dns_names:
        x509["sans"] = {"emails": emails, "dns_names": dns_names}
    if validity_months is not None:
        x509["validity_months"] = validity_months
    data: dict[str, Any] = {"key_props": key_props, "x509_props": x509}
    if issuer is not None:
        data["issuer"] = {"name": issuer}
    if content_type is not None:
        resolved = _CONTENT_TYPE_ALIASES.get(content_type.lower(), content_type)
        data["secret_props"] = {"contentType": resolved}
    return CertificatePolicy.from_kv_json(data)
