"""Each compliance rule against a version that violates it and one that passes; the rules file."""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.errors import BadParameter
from ledger.pki.issue import add_months
from ledger.reports.compliance import Facts, _longer_than_months, compile_rules, evaluate
from ledger.reports.rules import RulesFile, load_rules, parse_rules
from ledger.reports.source import CertificateRows, PolicyBook, VersionRow
from projections.lineage import certificate_facts

REPORT_TIME = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NBF = datetime(2026, 8, 1, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs"


def t(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def policy(months: int = 6, actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if actions is None:
        actions = [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}]
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True, "reuse_key": False},
        "x509_props": {"subject": "CN=a.example", "validity_months": months},
        "issuer": {"name": "Self"},
        "lifetime_actions": actions,
    }


BOOK = {"good": policy()}


def version(name: str = "v1", seq: int = 3, **changes: Any) -> VersionRow:
    """A compliant EC P-256 version valid for 180 days from NBF; `changes` override."""
    nbf = changes.pop("nbf", NBF)
    exp = changes.pop("exp", nbf + timedelta(days=180))
    row = VersionRow(
        cert_id="c1",
        generation=1,
        version=name,
        seq=seq,
        status="completed",
        origin="self",
        issuer="Self",
        provider=None,
        order_ref=None,
        key_id=f"key-{name}",
        key_reused=0,
        kty="EC",
        key_size=None,
        crv="P-256",
        exportable=1,
        csr_sha256="00",
        policy_hash="good",
        x5t="x5t",
        serial="01",
        nbf=t(nbf),
        exp=t(exp),
        enabled=1,
        tags="{}",
        created=t(nbf),
        promoted_at=t(nbf),
        superseded_at=None,
        previous_version=None,
        actor="admin",
        request_id="r",
        error_code=None,
        policy_changes=None,
        spki_sha256=f"spki-{name}",
        issued_at=t(nbf),
        certificate='{"subject": "CN=a.example", "dns_names": ["a.example"]}',
        issuer_cn="a.example",
        sig_alg="ecdsa-with-SHA256",
        sig_hash="sha256",
        san_count=1,
        cert_kty="EC",
        cert_key_size=256,
        cert_crv="P-256",
        ca_changes="{}",
        retries=0,
        cancel_requested_at=None,
        outcome=None,
    )
    return replace(row, **changes)


def rsa(bits: int, **changes: Any) -> VersionRow:
    values: dict[str, Any] = {
        "kty": "RSA",
        "key_size": bits,
        "crv": None,
        "cert_kty": "RSA",
        "cert_key_size": bits,
        "cert_crv": None,
        "sig_alg": "sha256WithRSAEncryption",
    }
    return version(**{**values, **changes})


def findings(
    *rows: VersionRow,
    rules: dict[str, Any] | None = None,
    book: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
    report_time: datetime = REPORT_TIME,
) -> list[dict[str, Any]]:
    cert = CertificateRows(
        "c1", "web", "active", current, 1, rows[-1].policy_hash, None, list(rows)
    )
    compiled = compile_rules(parse_rules({"rules": rules or {}}).rules)
    return evaluate([cert], PolicyBook.of(book or BOOK), compiled, report_time).findings


def hits(rule: str, *rows: VersionRow, **kwargs: Any) -> list[tuple[str, str]]:
    """(version, evaluated) of each finding of `rule`."""
    return [(f["version"], f["evaluated"]) for f in findings(*rows, **kwargs) if f["rule"] == rule]


def test_a_compliant_version_has_no_findings() -> None:
    assert findings(version()) == []
    assert findings(version(), current="v1") == []


# -- Azure Policy --------------------------------------------------------------------------


def test_max_validity() -> None:
    too_long = version(exp=NBF + timedelta(days=400))
    assert hits("max_validity", too_long) == [("v1", "issuance")]
    assert hits("max_validity", version(exp=NBF + timedelta(days=366))) == []
    # The policy in force asking for more than allowed is a violation too.
    long_policy = {"long": policy(months=24)}
    assert hits("max_validity", version(policy_hash="long"), book=long_policy) == [
        ("v1", "issuance")
    ]
    six = {"rules": {"max_validity": {"max_months": 6}}}
    (finding,) = [f for f in findings(too_long, rules=six["rules"]) if f["rule"] == "max_validity"]
    assert finding["severity"] == "medium"
    assert finding["source"] == "azure-policy"
    assert finding["expected"] == "at most 6 months"
    assert finding["actual"] == "400.0 days"


def test_allowed_key_types() -> None:
    only_ec = {"allowed_key_types": {"key_types": ["EC", "EC-HSM"]}}
    assert hits("allowed_key_types", rsa(2048), rules=only_ec) == [("v1", "issuance")]
    assert hits("allowed_key_types", version(), rules=only_ec) == []
    assert hits("allowed_key_types", version(kty="EC-HSM"), rules=only_ec) == []
    assert hits("allowed_key_types", rsa(2048)) == []  # every type is allowed by default


def test_min_rsa_key_size() -> None:
    assert hits("min_rsa_key_size", rsa(1024)) == [("v1", "issuance")]
    assert hits("min_rsa_key_size", rsa(2048)) == []
    assert hits("min_rsa_key_size", rsa(2048), rules={"min_rsa_key_size": {"min_bits": 3072}})
    assert hits("min_rsa_key_size", version()) == []  # EC keys are not its business


def test_allowed_ec_curves() -> None:
    p256 = {"allowed_ec_curves": {"curves": ["P-256"]}}
    p384 = version(crv="P-384", cert_crv="P-384", cert_key_size=384)
    assert hits("allowed_ec_curves", p384, rules=p256) == [("v1", "issuance")]
    assert hits("allowed_ec_curves", version(), rules=p256) == []
    assert hits("allowed_ec_curves", rsa(2048), rules=p256) == []


@pytest.mark.parametrize(
    ("trigger", "violates"),
    [
        ({"lifetime_percentage": 90}, True),
        ({"lifetime_percentage": 80}, False),
        ({"days_before_expiry": 30}, True),
        ({"days_before_expiry": 90}, False),
    ],
)
def test_lifetime_actions(trigger: dict[str, int], violates: bool) -> None:
    actions = [{"trigger": trigger, "action": {"action_type": "AutoRenew"}}]
    book = {"p": policy(months=12, actions=actions)}
    expected = [("v1", "issuance")] if violates else []
    assert hits("lifetime_actions", version(policy_hash="p"), book=book) == expected


def test_lifetime_actions_requires_an_action_unless_told_otherwise() -> None:
    book = {"none": policy(actions=[])}
    row = version(policy_hash="none")
    assert hits("lifetime_actions", row, book=book) == [("v1", "issuance")]
    relaxed = {"lifetime_actions": {"require_action": False}}
    assert hits("lifetime_actions", row, book=book, rules=relaxed) == []


def test_lifetime_actions_at_report_time_reads_the_current_policy() -> None:
    # Issued under a good policy; the certificate's policy was later changed to a late trigger.
    late = {"trigger": {"lifetime_percentage": 95}, "action": {"action_type": "AutoRenew"}}
    book = {"good": policy(), "late": policy(actions=[late])}
    row = version()
    cert = CertificateRows("c1", "web", "active", "v1", 1, "late", None, [row])
    compiled = compile_rules(RulesFile().rules)
    result = evaluate([cert], PolicyBook.of(book), compiled, REPORT_TIME).findings
    assert [(f["rule"], f["evaluated"]) for f in result] == [("lifetime_actions", "report")]


def test_expiring() -> None:
    soon = version(nbf=REPORT_TIME - timedelta(days=170), exp=REPORT_TIME + timedelta(days=10))
    later = version(nbf=REPORT_TIME - timedelta(days=80), exp=REPORT_TIME + timedelta(days=100))
    assert hits("expiring", soon, current="v1") == [("v1", "report")]
    assert hits("expiring", later, current="v1") == []
    (finding,) = [f for f in findings(soon, current="v1") if f["rule"] == "expiring"]
    assert finding["message"] == "expires in 10.0 days"
    expired = version(nbf=REPORT_TIME - timedelta(days=200), exp=REPORT_TIME - timedelta(days=2))
    (gone,) = [f for f in findings(expired, current="v1") if f["rule"] == "expiring"]
    assert (gone["actual"], gone["message"]) == ("expired", "expired 2.0 days before")
    # Issued with less than the window left: a violation at issuance already.
    short = version(exp=NBF + timedelta(days=20))
    assert hits("expiring", short) == [("v1", "issuance")]
    assert hits("expiring", soon, current="v1", rules={"expiring": {"days": 5}}) == []


def test_integrated_ca() -> None:
    on = {"integrated_ca": {"enabled": True, "providers": ["LocalCA"]}}
    ordered = version(origin="provider", issuer="corp", provider="localca", order_ref="o1")
    assert hits("integrated_ca", ordered, rules=on) == []
    assert hits("integrated_ca", version(), rules=on) == [("v1", "issuance")]
    acme = replace(ordered, provider="acme")
    assert hits("integrated_ca", acme, rules=on) == [("v1", "issuance")]
    assert hits("integrated_ca", version()) == []  # off by default


def test_non_integrated_ca() -> None:
    on = {"non_integrated_ca": {"enabled": True, "common_names": ["Contoso Issuing CA"]}}
    contoso = version(origin="merge", issuer="Unknown", issuer_cn="Contoso Issuing CA")
    assert hits("non_integrated_ca", contoso, rules=on) == []
    other = replace(contoso, issuer_cn="Fabrikam CA")
    assert hits("non_integrated_ca", other, rules=on) == [("v1", "issuance")]
    assert hits("non_integrated_ca", other) == []  # off by default


# -- CA/Browser Forum ----------------------------------------------------------------------


def test_sha1_signature_at_issuance_and_now() -> None:
    def sha1(nbf: datetime) -> VersionRow:
        return rsa(2048, sig_alg="sha1WithRSAEncryption", sig_hash="sha1", nbf=nbf)

    after = sha1(datetime(2017, 3, 1, tzinfo=UTC))
    before = sha1(datetime(2015, 3, 1, tzinfo=UTC))
    assert hits("sha1_signature", after) == [("v1", "issuance")]
    # Allowed when it was issued, not any more.
    assert hits("sha1_signature", before) == []
    assert hits("sha1_signature", before, current="v1") == [("v1", "report")]
    assert hits("sha1_signature", rsa(2048), current="v1") == []
    (finding,) = [f for f in findings(after) if f["rule"] == "sha1_signature"]
    assert finding["severity"] == "critical" and finding["source"] == "cabf-br"


@pytest.mark.parametrize(
    ("issued", "days", "violates"),
    [
        (datetime(2021, 1, 10, tzinfo=UTC), 397, False),
        (datetime(2021, 1, 10, tzinfo=UTC), 399, True),
        (datetime(2019, 1, 10, tzinfo=UTC), 800, False),  # 825 days allowed then
        (datetime(2019, 1, 10, tzinfo=UTC), 830, True),
        (datetime(2016, 1, 10, tzinfo=UTC), 1180, False),  # 39 months
        (datetime(2016, 1, 10, tzinfo=UTC), 1200, True),
        (datetime(2026, 6, 1, tzinfo=UTC), 199, False),  # 200 days from 2026-03-15
        (datetime(2026, 6, 1, tzinfo=UTC), 201, True),
        (datetime(2011, 1, 10, tzinfo=UTC), 3650, False),  # before the first step
    ],
)
def test_validity_period_at_the_issuance_date(issued: datetime, days: int, violates: bool) -> None:
    row = version(nbf=issued, exp=issued + timedelta(days=days))
    expected = [("v1", "issuance")] if violates else []
    assert hits("validity_period", row) == expected


def test_validity_period_now_applies_todays_limit() -> None:
    issued = datetime(2025, 12, 1, tzinfo=UTC)
    row = version(nbf=issued, exp=issued + timedelta(days=365))
    assert hits("validity_period", row, current="v1") == [("v1", "report")]
    private = {"validity_period": {"exclude_issuers": ["Self"]}}
    assert hits("validity_period", row, current="v1", rules=private) == []


def test_missing_san() -> None:
    assert hits("missing_san", version(san_count=0)) == [("v1", "issuance")]
    assert hits("missing_san", version(san_count=None)) == [("v1", "issuance")]
    assert hits("missing_san", version()) == []


@pytest.mark.parametrize(
    ("row", "violates"),
    [
        (rsa(1024), True),
        (rsa(2047), True),
        (rsa(2048), False),
        (version(crv="P-256K", cert_crv="P-256K"), True),
        (version(crv="P-384", cert_crv="P-384", cert_key_size=384), False),
        (version(kty="EC", cert_kty="OKP", cert_crv="Ed25519"), True),
    ],
)
def test_weak_key(row: VersionRow, violates: bool) -> None:
    assert hits("weak_key", row) == ([("v1", "issuance")] if violates else [])


def test_key_reuse_across_versions() -> None:
    first = version("v1", 3)
    again = version("v2", 9, spki_sha256="spki-v1", key_id="key-v1", key_reused=1)
    fresh = version("v3", 15)
    assert hits("key_reuse", first, again, fresh) == [("v2", "issuance")]
    # The same public key imported again, under another key id, is reuse too.
    imported = version("v4", 21, origin="import", spki_sha256="spki-v3")
    assert hits("key_reuse", first, fresh, imported) == [("v4", "issuance")]


def test_current_versions_are_evaluated_twice_others_once() -> None:
    old = rsa(1024, version="v1", seq=3)
    new = replace(rsa(1024), version="v2", seq=9, spki_sha256="other", key_id="k2")
    result = [
        (f["version"], f["evaluated"])
        for f in findings(old, new, current="v2")
        if f["rule"] == "weak_key"
    ]
    assert result == [("v1", "issuance"), ("v2", "issuance"), ("v2", "report")]


def test_disabled_rules_and_severities() -> None:
    rules = {"weak_key": {"enabled": False}, "min_rsa_key_size": {"severity": "low"}}
    result = findings(rsa(1024), rules=rules)
    assert [(f["rule"], f["severity"]) for f in result] == [("min_rsa_key_size", "low")]


# -- the rules file --------------------------------------------------------------------------


def test_the_documented_example_file_holds_the_defaults() -> None:
    example = load_rules(DOCS / "report-rules.example.toml")
    assert example == RulesFile()


def test_a_toml_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        "schema_version = 1\n"
        "[rules.max_validity]\nmax_months = 6\nseverity = 'high'\n"
        "[rules.validity_period]\nexclude_issuers = ['Self']\n"
        "schedule = [{from = 2020-09-01, max_days = 398}, {from = 2030-01-01, max_days = 30}]\n"
    )
    rules = load_rules(path).rules
    assert (rules.max_validity.max_months, rules.max_validity.severity) == (6, "high")
    assert [s.max_days for s in rules.validity_period.schedule] == [398, 30]
    assert rules.expiring == RulesFile().rules.expiring


def test_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": {"expiring": {"days": 60}}}))
    assert load_rules(path).rules.expiring.days == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[rules.expiring]\ndays = 'soon'\n",
            "rules.expiring.days: Input should be a valid integer",
        ),
        ("[rules.expiring]\nweeks = 2\n", "rules.expiring.weeks: unknown field"),
        ("[rules.made_up]\n", "rules.made_up: unknown field"),
        ("schema_version = 2\n", "schema_version: Input should be 1"),
        ("[rules.weak_key]\nseverity = 'urgent'\n", "rules.weak_key.severity: Input should be"),
        (
            "[rules.non_integrated_ca]\nenabled = true\n",
            "rules.non_integrated_ca.common_names: at least one CA common name is required",
        ),
        (
            "[rules.validity_period]\nschedule = [{from = 2020-01-01}]\n",
            "rules.validity_period.schedule[0]: exactly one of max_days or max_months",
        ),
        (
            "[rules.validity_period]\nschedule = [{from = 2021-01-01, max_days = 1},"
            " {from = 2020-01-01, max_days = 2}]\n",
            "rules.validity_period.schedule: the steps must be in increasing order",
        ),
        ("[rules.expiring\n", "not valid TOML"),
    ],
)
def test_a_bad_rules_file_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BadParameter) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"rules file {path}: ")
    assert message in str(caught.value)


def test_a_rules_file_needs_a_known_suffix(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: {}\n")
    with pytest.raises(BadParameter, match=r"must end in \.toml or \.json"):
        load_rules(path)
    with pytest.raises(BadParameter, match="cannot read it"):
        load_rules(tmp_path / "missing.toml")


@given(
    nbf=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=1, max_value=120),
    offset=st.integers(min_value=-4 * 86400, max_value=4 * 86400),
    slack_days=st.integers(min_value=0, max_value=1),
)
def test_the_month_shortcut_agrees_with_calendar_months(
    nbf: datetime, months: int, offset: int, slack_days: int
) -> None:
    exp = add_months(nbf, months) + timedelta(seconds=offset)
    slack = timedelta(days=slack_days)
    facts = Facts("web", version(), nbf, exp, None)
    assert _longer_than_months(facts, months, slack) == (exp > add_months(nbf, months) + slack)


def test_certificate_facts_count_every_kind_of_san() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def der(*names: x509.GeneralName) -> str:
        key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "facts")])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(NBF)
            .not_valid_after(NBF + timedelta(days=30))
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), False)
        cert = builder.sign(key, hashes.SHA384())
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    bare = certificate_facts(der())
    assert (bare["san_count"], bare["cert_kty"], bare["cert_crv"]) == (0, "EC", "P-384")
    assert (bare["sig_alg"], bare["sig_hash"], bare["issuer_cn"]) == (
        "ecdsa-with-SHA384",
        "sha384",
        "facts",
    )
    both = certificate_facts(
        der(x509.IPAddress(ipaddress.ip_address("10.0.0.1")), x509.RFC822Name("ops@a.example"))
    )
    assert both["san_count"] == 2
    shown = json.loads(both["certificate"])
    assert (shown["ip_addresses"], shown["emails"], shown["dns_names"]) == (
        ["10.0.0.1"],
        ["ops@a.example"],
        [],
    )


def test_the_schema_refuses_a_report_that_breaks_it() -> None:
    from tests.support.report_schema import assert_valid

    cert = CertificateRows("c1", "web", "active", "v1", 1, "good", None, [version()])
    compiled = compile_rules(RulesFile().rules)
    result = evaluate([cert], PolicyBook.of(BOOK), compiled, REPORT_TIME)
    report = {
        "schema_version": 1,
        "report": "compliance",
        "generated_at": t(REPORT_TIME),
        "report_time": t(REPORT_TIME),
        "as_of": None,
        "at_position": None,
        "log_position": 7,
        "checkpoint": {"origin": "o", "tree_size": 7, "root_hash": "unavailable", "note": ""},
        "rules": RulesFile().as_json(),
        "summary": {
            "certificates": 1,
            "versions_evaluated": 1,
            "findings": 0,
            "certificates_with_findings": 0,
            "by_severity": dict.fromkeys(("critical", "high", "medium", "low", "info"), 0),
            "by_evaluation": {"issuance": 0, "report": 0},
            "by_rule": {},
        },
        "findings": result.findings,
    }
    assert_valid(report)
    broken = {**report, "findings": [{"rule": "made_up"}]}
    with pytest.raises(AssertionError, match="findings/0"):
        assert_valid(broken)
    with pytest.raises(AssertionError, match="checkpoint"):
        assert_valid({**report, "checkpoint": {"tree_size": -1}})
