"""The compliance report: every rule against every version, at issuance and at report time.

- At issuance: each version that has a certificate, at its notBefore, under the policy in
  force when the version was created.
- At report time: each certificate's current version, at the report time (now or --as-of),
  under the certificate's policy at that time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.pki.issue import add_months
from ledger.reports.lineage import key_reuse
from ledger.reports.model import ReportContext, iso_text
from ledger.reports.rules import SEVERITIES, Rule, Rules, RulesFile
from ledger.reports.source import CertificateRows, PolicyBook, PolicyFacts, VersionRow

AZURE = "azure-policy"
CABF = "cabf-br"


class Facts:
    """One version's facts as the rules read them, computed once per version."""

    __slots__ = (
        "curve",
        "exp",
        "key_type",
        "length",
        "name",
        "nbf",
        "reused_from",
        "row",
        "rsa_bits",
    )

    def __init__(
        self, name: str, row: VersionRow, nbf: datetime, exp: datetime, reused_from: str | None
    ) -> None:
        self.name = name
        self.row = row
        self.nbf = nbf
        self.exp = exp
        self.length = exp - nbf
        self.reused_from = reused_from
        # RSA, EC or what the certificate holds (the HSM flavour folds into its family).
        self.key_type = (row.cert_kty or row.kty or "").removesuffix("-HSM")
        self.rsa_bits = row.cert_key_size or row.key_size
        self.curve = row.cert_crv or row.crv


Outcome = tuple[str, Any, Any] | None  # (message, expected, actual) of a violation
Check = Callable[[Facts, datetime, PolicyFacts | None], Outcome]


@dataclass(frozen=True)
class CompiledRule:
    id: str
    title: str
    source: str
    severity: str
    issuers: frozenset[str] | None
    excluded: frozenset[str]
    check: Check

    def applies_to(self, issuer: str | None) -> bool:
        name = (issuer or "").lower()
        if self.issuers is not None and name not in self.issuers:
            return False
        return name not in self.excluded


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


_NO_SLACK = timedelta(0)
# (months, slack) -> the shortest and longest that many months can be, plus the slack
_BOUNDS: dict[tuple[int, timedelta], tuple[timedelta, timedelta]] = {}


def _longer_than_months(f: Facts, months: int, slack: timedelta = _NO_SLACK) -> bool:
    """notAfter is later than notBefore + `months` calendar months (+ `slack`)."""
    bounds = _BOUNDS.get((months, slack))
    if bounds is None:
        bounds = (timedelta(days=28 * months) + slack, timedelta(days=31 * months) + slack)
        _BOUNDS[(months, slack)] = bounds
    if f.length <= bounds[0]:
        return False  # the shortest months cannot be exceeded
    if f.length > bounds[1]:
        return True
    nbf, exp = f.nbf, f.exp - slack
    target = nbf.year * 12 + nbf.month + months
    reached = exp.year * 12 + exp.month
    if reached != target:
        return reached > target
    if nbf.day <= 28:  # no clamping to a shorter month: compare within the month
        return (exp.day, exp.time()) > (nbf.day, nbf.time())
    return exp > add_months(nbf, months)


def _max_validity(rule: Any) -> Check:
    limit = rule.max_months
    one_day = timedelta(days=1)

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if policy is not None and policy.validity_months and policy.validity_months > limit:
            return (
                f"the policy asks for {policy.validity_months} months of validity, more than "
                f"the {limit} allowed",
                f"at most {limit} months",
                f"{policy.validity_months} months (policy)",
            )
        if _longer_than_months(f, limit, one_day):
            days = _days(f.length)
            return (
                f"the certificate is valid for {days} days, more than {limit} months",
                f"at most {limit} months",
                f"{days} days",
            )
        return None

    return check


def _allowed_key_types(rule: Any) -> Check:
    allowed = set(rule.key_types)

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        kty = f.row.kty or f.row.cert_kty
        if kty not in allowed:
            return (f"key type {kty} is not allowed", sorted(allowed), kty)
        return None

    return check


def _min_rsa_key_size(rule: Any) -> Check:
    minimum = rule.min_bits

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if f.key_type == "RSA" and (f.rsa_bits or 0) < minimum:
            return (f"RSA key of {f.rsa_bits} bits, under {minimum}", minimum, f.rsa_bits)
        return None

    return check


def _allowed_ec_curves(rule: Any) -> Check:
    allowed = set(rule.curves)

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if f.key_type == "EC" and f.curve not in allowed:
            return (f"curve {f.curve} is not allowed", sorted(allowed), f.curve)
        return None

    return check


def _lifetime_actions(rule: Any) -> Check:
    max_pct, min_days, required = (
        rule.max_lifetime_percentage,
        rule.min_days_before_expiry,
        rule.require_action,
    )
    expected = f"at most {max_pct}% of the lifetime or at least {min_days} days before expiry"

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if policy is None:
            return None
        if not policy.actions:
            if required:
                return ("the policy has no lifetime action", expected, "none")
            return None
        for action, pct, days in policy.actions:
            if pct is not None and pct > max_pct:
                return (f"{action} triggers at {pct}% of the lifetime", expected, f"{pct}%")
            if days is not None and days < min_days:
                return (
                    f"{action} triggers {days} days before expiry",
                    expected,
                    f"{days} days before expiry",
                )
        return None

    return check


def _expiring(rule: Any) -> Check:
    window = timedelta(days=rule.days)

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        left = f.exp - moment
        if left >= window:
            return None
        if left <= timedelta(0):
            return (f"expired {_days(-left)} days before", f"at least {rule.days} days", "expired")
        return (f"expires in {_days(left)} days", f"at least {rule.days} days", _days(left))

    return check


def _integrated_ca(rule: Any) -> Check:
    allowed = {p.lower() for p in rule.providers}

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        provider = f.row.provider
        if provider is None or provider.lower() not in allowed:
            how = f"through provider {provider}" if provider else f"by {f.row.origin}"
            return (f"issued {how}", sorted(rule.providers), provider or f.row.origin)
        return None

    return check


def _non_integrated_ca(rule: Any) -> Check:
    allowed = {n.lower() for n in rule.common_names}

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        cn = f.row.issuer_cn
        if cn is None or cn.lower() not in allowed:
            return (f"issued by CN={cn}", list(rule.common_names), cn)
        return None

    return check


def _sha1(rule: Any) -> Check:
    hashes = {h.lower() for h in rule.hashes}
    start = datetime(
        rule.forbidden_from.year, rule.forbidden_from.month, rule.forbidden_from.day, tzinfo=UTC
    )

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        sig = (f.row.sig_hash or "").lower()
        if sig in hashes and moment >= start:
            return (
                f"signed with {f.row.sig_alg}, not allowed since {rule.forbidden_from}",
                "not " + ", ".join(sorted(hashes)),
                f.row.sig_alg,
            )
        return None

    return check


def _validity_period(rule: Any) -> Check:
    starts = [datetime(s.start.year, s.start.month, s.start.day, tzinfo=UTC) for s in rule.schedule]
    steps = list(rule.schedule)
    second = timedelta(seconds=1)

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        index = bisect_right(starts, moment) - 1
        if index < 0:
            return None
        step = steps[index]
        # The Baseline Requirements count the validity period inclusively (+1 second).
        length = f.length + second
        if step.max_days is not None and length > timedelta(days=step.max_days):
            limit = f"at most {step.max_days} days"
        elif step.max_months is not None and _longer_than_months(f, step.max_months):
            limit = f"at most {step.max_months} months"
        else:
            return None
        days = _days(length)
        return (
            f"valid for {days} days; certificates issued from {step.start} may be valid {limit}",
            limit,
            f"{days} days",
        )

    return check


def _missing_san(rule: Any) -> Check:
    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if not f.row.san_count:
            return ("the certificate has no subject alternative name", "a SAN", "none")
        return None

    return check


def _weak_key(rule: Any) -> Check:
    curves = set(rule.curves)
    minimum = rule.min_rsa_bits

    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        kty = f.key_type
        if kty == "RSA":
            bits = f.rsa_bits or 0
            if bits < minimum or bits % 8:
                return (f"RSA key of {bits} bits", f"RSA of at least {minimum} bits", bits)
            return None
        if kty == "EC":
            if f.curve not in curves:
                return (f"EC key on curve {f.curve}", sorted(curves), f.curve)
            return None
        return (f"key type {kty} is not allowed", "RSA or EC", kty)

    return check


def _key_reuse(rule: Any) -> Check:
    def check(f: Facts, moment: datetime, policy: PolicyFacts | None) -> Outcome:
        if f.reused_from is not None:
            return (
                f"reuses the key of version {f.reused_from}",
                "a new key",
                f"key of {f.reused_from}",
            )
        return None

    return check


# id -> (title, source, check builder), in report order.
CATALOGUE: dict[str, tuple[str, str, Callable[[Any], Check]]] = {
    "max_validity": (
        "Certificates should have the specified maximum validity period",
        AZURE,
        _max_validity,
    ),
    "allowed_key_types": ("Certificates should use allowed key types", AZURE, _allowed_key_types),
    "min_rsa_key_size": (
        "Certificates using RSA cryptography should have the specified minimum key size",
        AZURE,
        _min_rsa_key_size,
    ),
    "allowed_ec_curves": (
        "Certificates using elliptic curve cryptography should have allowed curve names",
        AZURE,
        _allowed_ec_curves,
    ),
    "lifetime_actions": (
        "Certificates should have the specified lifetime action triggers",
        AZURE,
        _lifetime_actions,
    ),
    "expiring": (
        "Certificates should not expire within the specified number of days",
        AZURE,
        _expiring,
    ),
    "integrated_ca": (
        "Certificates should be issued by the specified integrated certificate authority",
        AZURE,
        _integrated_ca,
    ),
    "non_integrated_ca": (
        "Certificates should be issued by one of the specified non-integrated certificate "
        "authorities",
        AZURE,
        _non_integrated_ca,
    ),
    "sha1_signature": ("No SHA-1 signatures", CABF, _sha1),
    "validity_period": (
        "Validity no longer than allowed at the issuance date",
        CABF,
        _validity_period,
    ),
    "missing_san": ("Subject alternative names present", CABF, _missing_san),
    "weak_key": ("No weak keys", CABF, _weak_key),
    "key_reuse": ("No key reuse across versions", CABF, _key_reuse),
}


def compile_rules(rules: Rules) -> list[CompiledRule]:
    compiled = []
    for rule_id, (title, source, build) in CATALOGUE.items():
        rule: Rule = getattr(rules, rule_id)
        if not rule.enabled:
            continue
        compiled.append(
            CompiledRule(
                id=rule_id,
                title=title,
                source=source,
                severity=rule.severity,
                issuers=frozenset(i.lower() for i in rule.issuers) if rule.issuers else None,
                excluded=frozenset(i.lower() for i in rule.exclude_issuers),
                check=build(rule),
            )
        )
    return compiled


@dataclass
class Evaluation:
    findings: list[dict[str, Any]]
    evaluated: dict[str, int]
    certificates: int
    versions: int


def evaluate(
    certs: Sequence[CertificateRows],
    policies: PolicyBook,
    rules: list[CompiledRule],
    report_time: datetime,
) -> Evaluation:
    report_iso = iso_text(report_time)
    findings: list[dict[str, Any]] = []
    evaluated = dict.fromkeys((r.id for r in rules), 0)
    everywhere = [r for r in rules if r.issuers is None and not r.excluded]
    filtered = [r for r in rules if r.issuers is not None or r.excluded]
    checks = [(r, r.check) for r in everywhere]
    runs = 0

    def run(f: Facts, moment: datetime, at: str, when: str, policy: PolicyFacts | None) -> None:
        chosen = checks
        if filtered:
            issuer = f.row.issuer
            chosen = checks + [(r, r.check) for r in filtered if r.applies_to(issuer)]
            for rule, _ in chosen[len(checks) :]:
                evaluated[rule.id] += 1
        for rule, check in chosen:
            outcome = check(f, moment, policy)
            if outcome is not None:
                message, expected, actual = outcome
                findings.append(
                    {
                        "certificate": f.name,
                        "version": f.row.version,
                        "serial": f.row.serial,
                        "rule": rule.id,
                        "title": rule.title,
                        "source": rule.source,
                        "severity": rule.severity,
                        "evaluated": when,
                        "at": at,
                        "message": message,
                        "expected": expected,
                        "actual": actual,
                    }
                )

    versions = 0
    parse = datetime.fromisoformat
    for cert in certs:
        reused = key_reuse(cert.versions)
        current = cert.current
        for row in cert.versions:
            if row.nbf is None or row.exp is None:
                continue
            versions += 1
            facts = Facts(cert.name, row, parse(row.nbf), parse(row.exp), reused.get(row.version))
            run(facts, facts.nbf, row.nbf, "issuance", policies.get(row.policy_hash))
            runs += 1
            if row is current:
                run(facts, report_time, report_iso, "report", policies.get(cert.policy_hash))
                runs += 1
    for rule in everywhere:
        evaluated[rule.id] = runs
    return Evaluation(findings, evaluated, len(certs), versions)


class FindingTally:
    """The summary's counts of findings, added up finding by finding."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.findings = 0
        self.by_severity: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        self.violations = dict.fromkeys((r.id for r in rules), 0)
        self.by_evaluation: dict[str, int] = {"issuance": 0, "report": 0}
        self.certificates: set[str] = set()

    def add(self, finding: dict[str, Any]) -> None:
        self.findings += 1
        self.by_severity[finding["severity"]] += 1
        self.violations[finding["rule"]] += 1
        self.by_evaluation[finding["evaluated"]] += 1
        self.certificates.add(finding["certificate"])

    def merge(self, other: FindingTally) -> None:
        self.findings += other.findings
        for mine, theirs in (
            (self.by_severity, other.by_severity),
            (self.violations, other.violations),
            (self.by_evaluation, other.by_evaluation),
        ):
            for key, count in theirs.items():
                mine[key] += count
        self.certificates |= other.certificates


def summary(
    rules: Sequence[CompiledRule], result: Evaluation, tally: FindingTally
) -> dict[str, Any]:
    return {
        "certificates": result.certificates,
        "versions_evaluated": result.versions,
        "findings": tally.findings,
        "certificates_with_findings": len(tally.certificates),
        "by_severity": tally.by_severity,
        "by_evaluation": tally.by_evaluation,
        "by_rule": {
            r.id: {
                "title": r.title,
                "source": r.source,
                "severity": r.severity,
                "evaluated": result.evaluated[r.id],
                "violations": tally.violations[r.id],
            }
            for r in rules
        },
    }


def compliance_report(
    certs: Sequence[CertificateRows],
    policies: PolicyBook,
    rules_file: RulesFile,
    context: ReportContext,
) -> dict[str, Any]:
    rules = compile_rules(rules_file.rules)
    result = evaluate(certs, policies, rules, context.report_time)
    tally = FindingTally(rules)
    for finding in result.findings:
        tally.add(finding)
    return {
        **context.header("compliance"),
        "rules": rules_file.as_json(),
        "summary": summary(rules, result, tally),
        "findings": result.findings,
    }
