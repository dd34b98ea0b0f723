"""Compliance rules and their thresholds: defaults, and a TOML or JSON file to change them.

The file names only what it changes, e.g.

    schema_version = 1
    [rules.max_validity]
    max_months = 6
    [rules.validity_period]
    exclude_issuers = ["Self"]

Every rule takes `enabled`, `severity` (critical, high, medium, low, info), `issuers` (only
versions from these issuers: "Self", "Unknown" or issuer object names; empty means all) and
`exclude_issuers`. See docs/reports.md for each rule's own fields.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.domain.errors import BadParameter

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
KeyType = Literal["RSA", "RSA-HSM", "EC", "EC-HSM"]
CurveName = Literal["P-256", "P-256K", "P-384", "P-521"]
KEY_TYPES: tuple[KeyType, ...] = ("RSA", "RSA-HSM", "EC", "EC-HSM")
CURVES: tuple[CurveName, ...] = ("P-256", "P-256K", "P-384", "P-521")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = True
    severity: Severity = "medium"
    issuers: list[str] = Field(default_factory=list)
    exclude_issuers: list[str] = Field(default_factory=list)


# -- Azure Policy's built-in rules for Key Vault certificates --------------------------------


class MaxValidity(Rule):
    """Certificates should have the specified maximum validity period."""

    max_months: int = Field(default=12, ge=1, le=1200)


class AllowedKeyTypes(Rule):
    """Certificates should use allowed key types."""

    severity: Severity = "high"
    key_types: list[KeyType] = Field(default_factory=lambda: list(KEY_TYPES), min_length=1)


class MinRsaKeySize(Rule):
    """Certificates using RSA cryptography should have the specified minimum key size."""

    severity: Severity = "high"
    min_bits: int = Field(default=2048, ge=512, le=16384)


class AllowedEcCurves(Rule):
    """Certificates using elliptic curve cryptography should have allowed curve names."""

    severity: Severity = "high"
    curves: list[CurveName] = Field(default_factory=lambda: list(CURVES), min_length=1)


class LifetimeActions(Rule):
    """Certificates should have the specified lifetime action triggers."""

    max_lifetime_percentage: int = Field(default=80, ge=1, le=99)
    min_days_before_expiry: int = Field(default=90, ge=1)
    require_action: bool = True


class Expiring(Rule):
    """Certificates should not expire within the specified number of days."""

    severity: Severity = "high"
    days: int = Field(default=30, ge=0)


class IntegratedCa(Rule):
    """Certificates should be issued by the specified integrated certificate authority."""

    enabled: bool = False
    providers: list[str] = Field(default_factory=lambda: ["localca", "acme"])

    @model_validator(mode="after")
    def _needs_providers(self) -> IntegratedCa:
        if self.enabled and not self.providers:
            raise ValueError("providers: at least one provider is required when enabled")
        return self


class NonIntegratedCa(Rule):
    """Certificates should be issued by one of the specified non-integrated certificate
    authorities (by the issuing CA's common name)."""

    enabled: bool = False
    common_names: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_names(self) -> NonIntegratedCa:
        if self.enabled and not self.common_names:
            raise ValueError("common_names: at least one CA common name is required when enabled")
        return self


# -- CA/Browser Forum Baseline Requirements --------------------------------------------------


class Sha1Signature(Rule):
    """No SHA-1 (or MD5) signatures on certificates issued from `forbidden_from`."""

    severity: Severity = "critical"
    hashes: list[str] = Field(default_factory=lambda: ["sha1", "md5"], min_length=1)
    forbidden_from: date = date(2016, 1, 1)


class ValidityStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    max_days: int | None = Field(default=None, ge=1)
    max_months: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_limit(self) -> ValidityStep:
        if (self.max_days is None) == (self.max_months is None):
            raise ValueError("exactly one of max_days or max_months is required")
        return self


def _brs_schedule() -> list[ValidityStep]:
    # Baseline Requirements 1.0 (60 months), ballots 193 (39 months), 193/SC22 (825 and
    # 398 days) and SC-081 (200, 100, 47 days).
    steps: list[dict[str, Any]] = [
        {"from": date(2012, 7, 1), "max_months": 60},
        {"from": date(2015, 4, 1), "max_months": 39},
        {"from": date(2018, 3, 1), "max_days": 825},
        {"from": date(2020, 9, 1), "max_days": 398},
        {"from": date(2026, 3, 15), "max_days": 200},
        {"from": date(2027, 3, 15), "max_days": 100},
        {"from": date(2029, 3, 15), "max_days": 47},
    ]
    return [ValidityStep.model_validate(s) for s in steps]


class ValidityPeriod(Rule):
    """The validity period is no longer than the Baseline Requirements allowed on the date
    the certificate was issued (and, for the report-time check, allow today)."""

    severity: Severity = "high"
    schedule: list[ValidityStep] = Field(default_factory=_brs_schedule)

    @model_validator(mode="after")
    def _ordered(self) -> ValidityPeriod:
        starts = [s.start for s in self.schedule]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("schedule: the steps must be in increasing order of 'from'")
        return self


class MissingSan(Rule):
    """The certificate names its subjects in a subjectAltName extension."""

    severity: Severity = "high"


class WeakKey(Rule):
    """No RSA keys under `min_rsa_bits` (or not a multiple of 8) and only the listed curves."""

    severity: Severity = "critical"
    min_rsa_bits: int = Field(default=2048, ge=512, le=16384)
    curves: list[str] = Field(default_factory=lambda: ["P-256", "P-384", "P-521"], min_length=1)


class KeyReuse(Rule):
    """A version does not reuse the key of an earlier version of the same certificate."""


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_validity: MaxValidity = Field(default_factory=MaxValidity)
    allowed_key_types: AllowedKeyTypes = Field(default_factory=AllowedKeyTypes)
    min_rsa_key_size: MinRsaKeySize = Field(default_factory=MinRsaKeySize)
    allowed_ec_curves: AllowedEcCurves = Field(default_factory=AllowedEcCurves)
    lifetime_actions: LifetimeActions = Field(default_factory=LifetimeActions)
    expiring: Expiring = Field(default_factory=Expiring)
    integrated_ca: IntegratedCa = Field(default_factory=IntegratedCa)
    non_integrated_ca: NonIntegratedCa = Field(default_factory=NonIntegratedCa)
    sha1_signature: Sha1Signature = Field(default_factory=Sha1Signature)
    validity_period: ValidityPeriod = Field(default_factory=ValidityPeriod)
    missing_san: MissingSan = Field(default_factory=MissingSan)
    weak_key: WeakKey = Field(default_factory=WeakKey)
    key_reuse: KeyReuse = Field(default_factory=KeyReuse)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    rules: Rules = Field(default_factory=Rules)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problem(err: Any) -> str:
    loc = tuple(err["loc"])
    message = str(err["msg"])
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
        field, sep, rest = message.partition(": ")
        if sep and " " not in field:  # "providers: ..." names a field below this rule
            loc, message = (*loc, field), rest
    where = _path(loc) or "(top level)"
    return f"{where}: {message}"


def parse_rules(data: Any, source: str = "rules") -> RulesFile:
    """Validate a rules document; errors name the field, e.g. `rules.expiring.days`."""
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors(include_url=False))
        raise BadParameter(f"{source}: {problems}") from None


def load_rules(path: str | Path | None) -> RulesFile:
    """The rules in a .toml or .json file; the defaults when `path` is None."""
    if path is None:
        return RulesFile()
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise BadParameter(f"rules file {file}: cannot read it ({exc.strerror})") from exc
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        else:
            raise BadParameter(f"rules file {file}: the name must end in .toml or .json")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BadParameter(f"rules file {file}: not valid {suffix[1:].upper()}: {exc}") from exc
    return parse_rules(data, f"rules file {file}")
