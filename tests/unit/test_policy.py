from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.domain.policy import (
    CertificatePolicy,
    PolicyError,
    format_dn,
    parse_dn,
    policy_from_options,
)

AZURE_SAMPLE: dict[str, Any] = {
    "id": "https://myvault.vault.azure.net/certificates/selfSignedCert01/policy",
    "key_props": {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False},
    "secret_props": {"contentType": "application/x-pkcs12"},
    "x509_props": {
        "subject": "CN=*.microsoft.com",
        "sans": {"dns_names": ["onedrive.microsoft.com", "xbox.microsoft.com"]},
        "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
        "key_usage": ["digitalSignature", "keyEncipherment"],
        "validity_months": 12,
    },
    "lifetime_actions": [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
    ],
    "issuer": {"name": "Self"},
    "attributes": {"enabled": True, "created": 1482188947, "updated": 1482188947},
}


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"x509_props": {"subject": "CN=www.contoso.com"}}
    data.update(extra)
    return data


def refused(data: Any) -> str:
    with pytest.raises(PolicyError) as info:
        CertificatePolicy.from_kv_json(data)
    return str(info.value)


# -- defaults ---------------------------------------------------------------


def test_defaults_are_filled() -> None:
    policy = CertificatePolicy.from_kv_json(minimal())
    assert policy.to_kv_json() == {
        "key_props": {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False},
        "secret_props": {"contentType": "application/x-pkcs12"},
        "x509_props": {
            "subject": "CN=www.contoso.com",
            "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "validity_months": 12,
        },
        "lifetime_actions": [
            {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
        ],
        "issuer": {"name": "Unknown"},
        "attributes": {"enabled": True},
    }
    assert policy.is_manual
    assert not policy.is_self_signed
    assert policy.issuer_name == "Unknown"


def test_default_lifetime_action_is_auto_renew_for_other_issuers() -> None:
    for name in ("Self", "self", "DigiCert-1"):
        policy = CertificatePolicy.from_kv_json(minimal(issuer={"name": name}))
        assert policy.to_kv_json()["lifetime_actions"] == [
            {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
        ]


def test_issuer_names_are_normalised() -> None:
    assert CertificatePolicy.from_kv_json(minimal(issuer={"name": "SELF"})).issuer_name == "Self"
    policy = CertificatePolicy.from_kv_json(minimal(issuer={"name": "unknown"}))
    assert policy.issuer_name == "Unknown"
    assert policy.is_manual
    policy = CertificatePolicy.from_kv_json(minimal(issuer={"name": "self"}))
    assert policy.is_self_signed


@pytest.mark.parametrize(("kty", "curve"), [("EC", "P-256"), ("EC-HSM", "P-256")])
def test_ec_default_curve(kty: str, curve: str) -> None:
    policy = CertificatePolicy.from_kv_json(minimal(key_props={"kty": kty}))
    assert policy.key_props.crv == curve
    assert policy.key_props.key_size is None
    assert policy.to_kv_json()["key_props"] == {
        "exportable": not kty.endswith("-HSM"),
        "kty": kty,
        "reuse_key": False,
        "crv": curve,
    }


def test_rsa_hsm_default_size_and_explicit_values() -> None:
    policy = CertificatePolicy.from_kv_json(minimal(key_props={"kty": "RSA-HSM"}))
    assert policy.key_props.key_size == 2048
    policy = CertificatePolicy.from_kv_json(
        minimal(key_props={"kty": "EC", "crv": "P-384", "exportable": False, "reuse_key": True})
    )
    assert policy.key_props.crv == "P-384"
    assert not policy.key_props.exportable
    assert policy.key_props.reuse_key


@pytest.mark.parametrize("kty", ["RSA-HSM", "EC-HSM"])
def test_hsm_keys_are_not_exportable(kty: str) -> None:
    policy = CertificatePolicy.from_kv_json(minimal(key_props={"kty": kty}))
    assert policy.key_props.exportable is False
    with pytest.raises(PolicyError) as info:
        CertificatePolicy.from_kv_json(minimal(key_props={"kty": kty, "exportable": True}))
    assert str(info.value) == (
        f"key_props.exportable: cannot be true for an {kty} key: its private key never leaves "
        "the HSM, so the secret holds the certificate chain only"
    )
    # Switching a stored software policy to an HSM key must say exportable false too.
    software = CertificatePolicy.from_kv_json(minimal(key_props={"kty": kty[:-4]}))
    assert software.key_props.exportable is True
    with pytest.raises(PolicyError, match=r"key_props\.exportable: cannot be true"):
        software.merged({"key_props": {"kty": kty}})
    switched = software.merged({"key_props": {"kty": kty, "exportable": False}})
    assert switched.key_props.kty == kty and not switched.key_props.exportable


def test_nulls_mean_absent() -> None:
    data = {
        "key_props": {"kty": "RSA", "key_size": None, "crv": None},
        "x509_props": {"subject": "CN=a", "sans": None},
        "lifetime_actions": None,
        "issuer": {"name": None, "cty": None},
        "secret_props": None,
    }
    assert CertificatePolicy.from_kv_json(data) == CertificatePolicy.from_kv_json(
        {"x509_props": {"subject": "CN=a"}}
    )


def test_explicit_empty_lifetime_actions_are_kept() -> None:
    policy = CertificatePolicy.from_kv_json(minimal(lifetime_actions=[]))
    assert policy.to_kv_json()["lifetime_actions"] == []


# -- Key Vault samples, read-only and unknown fields -------------------------


def test_azure_sample_is_accepted() -> None:
    policy = CertificatePolicy.from_kv_json(AZURE_SAMPLE)
    assert policy.is_self_signed
    assert policy.x509_props.subject == "CN=*.microsoft.com"
    assert policy.x509_props.sans is not None
    assert policy.x509_props.sans.dns_names == ["onedrive.microsoft.com", "xbox.microsoft.com"]
    out = policy.to_kv_json()
    assert "id" not in out
    assert out["attributes"] == {"enabled": True}
    expected = copy.deepcopy(AZURE_SAMPLE)
    del expected["id"]
    expected["attributes"] = {"enabled": True}
    expected["x509_props"]["sans"].update(emails=[], upns=[])
    assert out == expected


def test_azure_sample_as_json_text_and_bytes() -> None:
    text = json.dumps(AZURE_SAMPLE)
    assert CertificatePolicy.from_kv_json(text) == CertificatePolicy.from_kv_json(AZURE_SAMPLE)
    assert CertificatePolicy.from_kv_json(text.encode()) == CertificatePolicy.from_kv_json(
        AZURE_SAMPLE
    )


def test_read_only_attributes_are_ignored() -> None:
    attributes = {
        "enabled": False,
        "created": 1,
        "updated": 2,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
        "nbf": 3,
        "exp": 4,
    }
    policy = CertificatePolicy.from_kv_json(minimal(attributes=attributes, id="x"))
    assert policy.to_kv_json()["attributes"] == {"enabled": False}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (minimal(extra=1), "extra"),
        ({"x509_props": {"subject": "CN=a", "basic": 1}}, "x509_props.basic"),
        (minimal(key_props={"size": 2048}), "key_props.size"),
        (minimal(attributes={"enabled": True, "id": "x"}), "attributes.id"),
        (minimal(secret_props={"content_type": "x"}), "secret_props.content_type"),
    ],
)
def test_unknown_fields_are_refused(data: dict[str, Any], path: str) -> None:
    assert f"{path}: unknown field" in refused(data)


# -- refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            minimal(key_props={"key_size": 1024}),
            "key_props.key_size: 1024 is not an allowed RSA key size (2048, 3072, 4096)",
        ),
        (minimal(key_props={"kty": "EC", "key_size": 256}), "key_props.key_size:"),
        (minimal(key_props={"kty": "RSA", "crv": "P-256"}), "key_props.crv:"),
        (minimal(key_props={"kty": "DSA"}), "key_props.kty:"),
        (minimal(key_props={"kty": "EC", "crv": "P-192"}), "key_props.crv:"),
        (minimal(key_props={"exportable": "yes"}), "key_props.exportable:"),
        (minimal(key_props={"key_size": "2048"}), "key_props.key_size:"),
        (minimal(secret_props={"contentType": "text/plain"}), "secret_props.contentType:"),
        (
            {"x509_props": {"subject": "CN=a", "sans": {"dns_names": ["ok.com", "bad..name"]}}},
            "x509_props.sans.dns_names[1]: 'bad..name' is not a valid DNS name",
        ),
        (
            {"x509_props": {"subject": "CN=a", "sans": {"dns_names": ["A.com", "a.COM"]}}},
            "x509_props.sans.dns_names[1]: duplicate DNS name 'a.com'",
        ),
        (
            {"x509_props": {"subject": "CN=a", "sans": {"emails": ["no spaces@x.com"]}}},
            "x509_props.sans.emails[0]:",
        ),
        (
            {"x509_props": {"subject": "CN=a", "sans": {"upns": ["ok@x.com", "user@bad_domain"]}}},
            "x509_props.sans.upns[1]:",
        ),
        (
            {"x509_props": {"subject": "CN=a", "sans": {"dns_names": ["h"] * 101}}},
            "x509_props.sans.dns_names:",
        ),
        ({"x509_props": {"subject": "CN=a", "ekus": ["1.3.6", "1.03"]}}, "x509_props.ekus[1]:"),
        ({"x509_props": {"subject": "CN=a", "ekus": ["3.1"]}}, "x509_props.ekus[0]:"),
        (
            {"x509_props": {"subject": "CN=a", "key_usage": ["cRLSign", "cRLSign"]}},
            "x509_props.key_usage[1]: duplicate key usage 'cRLSign'",
        ),
        ({"x509_props": {"subject": "CN=a", "key_usage": ["sign"]}}, "x509_props.key_usage[0]:"),
        ({"x509_props": {"subject": "CN=a", "validity_months": 0}}, "x509_props.validity_months:"),
        (
            {"x509_props": {"subject": "CN=a", "validity_months": 1201}},
            "x509_props.validity_months:",
        ),
        ({"x509_props": {"subject": ""}}, "x509_props.subject:"),
        ({"x509_props": {"subject": "", "sans": {}}}, "x509_props.subject:"),
        ({"x509_props": {"subject": "CN=a, XX=b"}}, "x509_props.subject: unknown attribute 'XX'"),
        ({}, "x509_props: field required"),
        (minimal(issuer={"name": "bad name"}), "issuer.name:"),
        (minimal(issuer={"name": "x" * 128}), "issuer.name:"),
        (minimal(issuer={"name": ""}), "issuer.name:"),
        (minimal(attributes={"enabled": 1}), "attributes.enabled:"),
    ],
)
def test_refusals_name_the_field(data: dict[str, Any], expected: str) -> None:
    assert expected in refused(data)


def action(kind: str, **trigger: int) -> dict[str, Any]:
    return {"trigger": trigger, "action": {"action_type": kind}}


@pytest.mark.parametrize(
    ("issuer", "actions", "expected"),
    [
        (
            "Self",
            [{"trigger": {}, "action": {"action_type": "AutoRenew"}}],
            "lifetime_actions[0].trigger: exactly one of",
        ),
        (
            "Self",
            [action("AutoRenew", lifetime_percentage=50, days_before_expiry=10)],
            "lifetime_actions[0].trigger: exactly one of",
        ),
        (
            "Self",
            [action("AutoRenew", lifetime_percentage=100)],
            "lifetime_actions[0].trigger.lifetime_percentage:",
        ),
        (
            "Self",
            [action("AutoRenew", lifetime_percentage=0)],
            "lifetime_actions[0].trigger.lifetime_percentage:",
        ),
        (
            "Self",
            [action("AutoRenew", days_before_expiry=0)],
            "lifetime_actions[0].trigger.days_before_expiry:",
        ),
        (
            "Self",
            [
                action("EmailContacts", days_before_expiry=10),
                action("AutoRenew", days_before_expiry=336),
            ],
            "lifetime_actions[1].trigger.days_before_expiry: 336 days must be less than",
        ),
        (
            "Self",
            [
                action("AutoRenew", lifetime_percentage=80),
                action("AutoRenew", days_before_expiry=5),
            ],
            "lifetime_actions[1].action.action_type: more than one AutoRenew action",
        ),
        (
            "Unknown",
            [action("AutoRenew", lifetime_percentage=80)],
            "lifetime_actions[0].action.action_type: AutoRenew is not possible",
        ),
        (
            "Self",
            [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "Renew"}}],
            "lifetime_actions[0].action.action_type:",
        ),
        ("Self", [{"trigger": {"lifetime_percentage": 80}}], "lifetime_actions[0].action:"),
    ],
)
def test_lifetime_action_refusals(issuer: str, actions: list[Any], expected: str) -> None:
    assert expected in refused(minimal(issuer={"name": issuer}, lifetime_actions=actions))


def test_lifetime_actions_accepted() -> None:
    actions = [
        action("EmailContacts", days_before_expiry=30),
        action("AutoRenew", lifetime_percentage=90),
    ]
    policy = CertificatePolicy.from_kv_json(
        minimal(issuer={"name": "Self"}, lifetime_actions=actions)
    )
    assert policy.to_kv_json()["lifetime_actions"] == actions
    # the limit scales with validity_months
    data = minimal(
        issuer={"name": "Self"}, lifetime_actions=[action("AutoRenew", days_before_expiry=335)]
    )
    CertificatePolicy.from_kv_json(data)


def test_subject_may_be_empty_with_sans() -> None:
    policy = CertificatePolicy.from_kv_json(
        {"x509_props": {"subject": "", "sans": {"emails": ["admin@contoso.com"]}}}
    )
    assert policy.x509_props.subject == ""
    policy = CertificatePolicy.from_kv_json({"x509_props": {"sans": {"dns_names": ["*.A.com"]}}})
    assert policy.x509_props.sans is not None
    assert policy.x509_props.sans.dns_names == ["*.a.com"]


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "contoso.com",
        "*.contoso.com",
        "xn--bcher-kva.example",
        "a-b.c-d.e",
        "1.2.3.4",
        "A" * 63,
    ],
)
def test_valid_dns_names(name: str) -> None:
    data = {"x509_props": {"sans": {"dns_names": [name]}}}
    policy = CertificatePolicy.from_kv_json(data)
    assert policy.x509_props.sans is not None
    assert policy.x509_props.sans.dns_names == [name.lower()]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-a.com",
        "a-.com",
        "a..com",
        "a.com.",
        "*",
        "*.",
        "a.*.com",
        "**.a.com",
        "a_b.com",
        "a b.com",
        "bücher.de",
        "a" * 64,
        ".".join(["a" * 63] * 4),
        "a.com\n",
    ],
)
def test_invalid_dns_names(name: str) -> None:
    message = refused({"x509_props": {"sans": {"dns_names": ["ok.com", name]}}})
    assert "x509_props.sans.dns_names[1]:" in message


@pytest.mark.parametrize(
    "address", ["", "@a.com", "a@", "a@@b.com", "a b@c.com", "a@b c.com", "a@-b.com", "ü@a.com"]
)
def test_invalid_mailboxes(address: str) -> None:
    assert "x509_props.sans.emails[0]:" in refused({"x509_props": {"sans": {"emails": [address]}}})


def test_non_json_inputs_are_policy_errors() -> None:
    for data in ["", "nope", "[1]", "null", "1" * 5000, b"\xff\xfe\x00", "[" * 100_000]:
        refused(data)
    assert refused([1]).startswith("policy:")
    assert "policy: field name 1 is not a string" in refused({1: 2})
    assert "x509_props.subject: must be a string" in refused({"x509_props": {"subject": 1}})


def test_multiple_errors_are_all_reported() -> None:
    with pytest.raises(PolicyError) as info:
        CertificatePolicy.from_kv_json(
            {"key_props": {"key_size": 1}, "x509_props": {"subject": "CN=a", "validity_months": 0}}
        )
    paths = [path for path, _ in info.value.errors]
    assert paths == ["key_props.key_size", "x509_props.validity_months"]


# -- distinguished names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("", []),
        ("   ", []),
        ("CN=www.contoso.com", [("CN", "www.contoso.com")]),
        (
            "cn=www.contoso.com, o=Contoso;c=us",
            [("CN", "www.contoso.com"), ("O", "Contoso"), ("C", "US")],
        ),
        ("  CN  =  a b  ,  OU = x ", [("CN", "a b"), ("OU", "x")]),
        (
            "S=Wa, E=a@b.c, EmailAddress=d@e.f, T=Dr, G=Ann, SN=Lee, Street=Main, UID=7",
            [
                ("ST", "Wa"),
                ("EMAILADDRESS", "a@b.c"),
                ("EMAILADDRESS", "d@e.f"),
                ("TITLE", "Dr"),
                ("GIVENNAME", "Ann"),
                ("SURNAME", "Lee"),
                ("STREET", "Main"),
                ("UID", "7"),
            ],
        ),
        (
            "DC=contoso, DC=com, SERIALNUMBER=123, L=Here, ST=There, TITLE=x, GIVENNAME=y",
            [
                ("DC", "contoso"),
                ("DC", "com"),
                ("SERIALNUMBER", "123"),
                ("L", "Here"),
                ("ST", "There"),
                ("TITLE", "x"),
                ("GIVENNAME", "y"),
            ],
        ),
        (r"O=Contoso\, Inc.", [("O", "Contoso, Inc.")]),
        (r"O=a\+b\"c\\d\=e\;f", [("O", 'a+b"c\\d=e;f')]),
        ('O="Contoso, Inc."', [("O", "Contoso, Inc.")]),
        ('O=" padded "', [("O", " padded ")]),
        (r'O="say \"hi\""', [("O", 'say "hi"')]),
        (r"CN=\ lead\ ", [("CN", " lead ")]),
        (r"CN=caf\C3\A9", [("CN", "café")]),
        (r"CN=a\2Cb", [("CN", "a,b")]),
        ("CN=a=b", [("CN", "a=b")]),
        ("CN=Zoë", [("CN", "Zoë")]),
    ],
)
def test_parse_dn(text: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_dn(text) == pairs
    assert parse_dn(format_dn(pairs)) == pairs


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("CN", "not a KEY=value pair"),
        ("CN=a, O", "not a KEY=value pair"),
        ("XX=a", "unknown attribute 'XX'"),
        ("=a", "missing attribute name"),
        ("CN=", "empty value for CN"),
        ('CN=""', "empty value for CN"),
        ("CN=a,", "empty component"),
        ("CN=a,,O=b", "empty component"),
        ("C=USA", "C must be exactly two letters"),
        ("C=1A", "C must be exactly two letters"),
        ("CN=" + "x" * 65, "CN is longer than 64"),
        ("CN=a+OU=b", "multi-valued"),
        ('CN=a"b', "unescaped"),
        ('CN="abc', "unterminated"),
        ('CN="a" b', "after a quoted value"),
        ("CN=a\\", "dangling"),
        ("CN=a\\q", "invalid escape"),
        ("CN=\\FF", "UTF-8"),
        ("CN=a\\00", "control characters"),
        ("DC=bü", "ASCII"),
        ("SERIALNUMBER=a_b", "SERIALNUMBER"),
    ],
)
def test_parse_dn_refusals(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_dn(text)
    assert fragment in str(info.value)


def test_cn_of_64_characters_is_accepted() -> None:
    assert parse_dn("CN=" + "x" * 64) == [("CN", "x" * 64)]


def test_format_dn_escapes() -> None:
    assert format_dn([("cn", "www.contoso.com"), ("o", "Contoso")]) == (
        "CN=www.contoso.com, O=Contoso"
    )
    assert format_dn([("O", 'a,b+c"d\\e;f<g>h=i')]) == r"O=a\,b\+c\"d\\e\;f\<g\>h=i"
    assert format_dn([("CN", " #x ")]) == r"CN=\ #x\ "
    assert format_dn([("CN", "#x")]) == r"CN=\#x"
    assert format_dn([("s", "WA")]) == "ST=WA"
    with pytest.raises(PolicyError):
        format_dn([("XX", "a")])


def test_subject_is_stored_canonically() -> None:
    policy = CertificatePolicy.from_kv_json(
        {"x509_props": {"subject": 'cn = www.contoso.com ; o="Contoso, Inc.";c=us'}}
    )
    assert policy.x509_props.subject == r"CN=www.contoso.com, O=Contoso\, Inc., C=US"
    again = CertificatePolicy.from_kv_json(policy.to_kv_json())
    assert again == policy


# -- fingerprint, merged, immutability ---------------------------------------------


def test_fingerprint_is_stable_and_sensitive() -> None:
    a = CertificatePolicy.from_kv_json(minimal())
    b = CertificatePolicy.from_kv_json(json.dumps(a.to_kv_json()))
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    c = CertificatePolicy.from_kv_json(minimal(key_props={"key_size": 4096}))
    assert a.fingerprint() != c.fingerprint()


def test_merged_deep_merges() -> None:
    base = CertificatePolicy.from_kv_json(AZURE_SAMPLE)
    updated = base.merged(
        {
            "key_props": {"key_size": 4096},
            "x509_props": {"validity_months": 24, "sans": {"dns_names": ["new.contoso.com"]}},
            "attributes": {"enabled": False, "updated": 99},
        }
    )
    assert updated.key_props.key_size == 4096
    assert updated.key_props.kty == "RSA"
    assert updated.x509_props.subject == "CN=*.microsoft.com"
    assert updated.x509_props.validity_months == 24
    assert updated.x509_props.sans is not None
    assert updated.x509_props.sans.dns_names == ["new.contoso.com"]
    assert updated.x509_props.ekus == base.x509_props.ekus
    assert updated.attributes.enabled is False
    assert updated.issuer_name == "Self"
    assert base.key_props.key_size == 2048  # original untouched


def test_merged_lists_replace_and_null_removes() -> None:
    base = CertificatePolicy.from_kv_json(AZURE_SAMPLE)
    updated = base.merged(
        {
            "key_props": {"kty": "EC", "key_size": None},
            "x509_props": {"ekus": ["1.3.6.1.5.5.7.3.4"]},
        }
    )
    assert updated.key_props.kty == "EC"
    assert updated.key_props.crv == "P-256"
    assert updated.x509_props.ekus == ["1.3.6.1.5.5.7.3.4"]
    assert base.merged({}) == base
    reset = base.merged({"lifetime_actions": None, "issuer": {"name": "Unknown"}})
    assert reset.lifetime_actions[0].action.action_type == "EmailContacts"


def test_merged_refuses_bad_input() -> None:
    base = CertificatePolicy.from_kv_json(AZURE_SAMPLE)
    with pytest.raises(PolicyError, match=r"key_props\.key_size"):
        base.merged({"key_props": {"key_size": 1000}})
    with pytest.raises(PolicyError, match=r"key_props\.key_size"):
        base.merged({"key_props": {"kty": "EC"}})  # key_size 2048 is still set
    with pytest.raises(PolicyError, match=r"lifetime_actions\[0\]\.action\.action_type"):
        base.merged({"issuer": {"name": "Unknown"}})
    with pytest.raises(PolicyError, match=r"x509_props\.bogus"):
        base.merged({"x509_props": {"bogus": True}})
    with pytest.raises(PolicyError):
        base.merged([1])  # type: ignore[arg-type]
    with pytest.raises(PolicyError):
        base.merged({"x509_props": "CN=x"})


def test_models_are_frozen() -> None:
    policy = CertificatePolicy.from_kv_json(minimal())
    with pytest.raises(ValidationError):
        policy.issuer = policy.issuer
    with pytest.raises(ValidationError):
        policy.key_props.key_size = 4096


# -- CLI helper ---------------------------------------------------------------------


def test_policy_from_options_defaults() -> None:
    policy = policy_from_options(
        subject="CN=www.contoso.com",
        sans=["www.contoso.com", "admin@contoso.com", " Api.Contoso.com "],
        kty=None,
        size=None,
        curve=None,
        validity_months=None,
        issuer=None,
        content_type=None,
    )
    assert policy.key_props.kty == "RSA"
    assert policy.key_props.key_size == 2048
    assert policy.x509_props.sans is not None
    assert policy.x509_props.sans.dns_names == ["www.contoso.com", "api.contoso.com"]
    assert policy.x509_props.sans.emails == ["admin@contoso.com"]
    assert policy.is_manual
    assert policy == CertificatePolicy.from_kv_json(policy.to_kv_json())


def test_policy_from_options_explicit() -> None:
    policy = policy_from_options(
        subject=None,
        sans=["contoso.com"],
        kty=None,
        size=None,
        curve="p-384",
        validity_months=24,
        issuer="Self",
        content_type="pem",
    )
    assert policy.key_props.kty == "EC"
    assert policy.key_props.crv == "P-384"
    assert policy.x509_props.subject == ""
    assert policy.x509_props.validity_months == 24
    assert policy.is_self_signed
    assert policy.secret_props.contentType == "application/x-pem-file"
    assert policy.lifetime_actions[0].action.action_type == "AutoRenew"


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ({"size": 1024}, "key_props.key_size"),
        ({"kty": "ec", "size": 2048}, "key_props.key_size"),
        ({"kty": "rsa", "curve": "P-256"}, "key_props.crv"),
        ({"validity_months": 0}, "x509_props.validity_months"),
        ({"issuer": "no spaces"}, "issuer.name"),
        ({"content_type": "zip"}, "secret_props.contentType"),
        ({"sans": ["bad..name"]}, "x509_props.sans.dns_names[0]"),
        ({"subject": "CN=a+b"}, "x509_props.subject"),
        ({"subject": None}, "x509_props.subject"),
    ],
)
def test_policy_from_options_errors(options: dict[str, Any], path: str) -> None:
    kwargs: dict[str, Any] = {
        "subject": "CN=a",
        "sans": [],
        "kty": None,
        "size": None,
        "curve": None,
        "validity_months": None,
        "issuer": None,
        "content_type": None,
    }
    kwargs.update(options)
    with pytest.raises(PolicyError) as info:
        policy_from_options(**kwargs)
    assert str(info.value).startswith(f"{path}:")


def test_key_vault_echoes_are_accepted() -> None:
    policy = CertificatePolicy.from_kv_json(
        {
            "key_props": {"kty": "EC", "crv": "P-384", "key_size": 384},
            "x509_props": {"subject": "CN=x", "basic_constraints": {"ca": False}},
        }
    )
    assert policy.key_props.key_size is None
    assert "basic_constraints" not in policy.to_kv_json()["x509_props"]
    with pytest.raises(PolicyError, match=r"key_props\.key_size"):
        CertificatePolicy.from_kv_json(
            {
                "key_props": {"kty": "EC", "crv": "P-384", "key_size": 256},
                "x509_props": {"subject": "CN=x"},
            }
        )
