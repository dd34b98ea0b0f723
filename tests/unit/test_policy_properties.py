from __future__ import annotations

import copy
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.policy import CertificatePolicy, PolicyError, format_dn, parse_dn

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(SETTINGS, max_examples=100)  # keeps the whole file around 10 s

# -- distinguished names ---------------------------------------------------------

ALIASES = {
    "CN": ["CN", "cn"],
    "O": ["O", "o"],
    "OU": ["OU", "ou"],
    "L": ["L"],
    "ST": ["ST", "S", "st"],
    "C": ["C", "c"],
    "EMAILADDRESS": ["E", "EMAILADDRESS", "emailAddress"],
    "DC": ["DC"],
    "STREET": ["STREET", "Street"],
    "SERIALNUMBER": ["SERIALNUMBER"],
    "TITLE": ["T", "TITLE"],
    "GIVENNAME": ["G", "GIVENNAME", "givenName"],
    "SURNAME": ["SN", "SURNAME"],
    "UID": ["UID", "uid"],
}

any_char = st.characters(blacklist_categories=("Cc", "Cs"))
ascii_char = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
printable_string_char = st.sampled_from(string.ascii_letters + string.digits + " '()+,-./:=?")


def dn_value(key: str) -> st.SearchStrategy[str]:
    if key == "C":
        return st.text(st.sampled_from(string.ascii_uppercase), min_size=2, max_size=2)
    if key == "CN":
        return st.text(any_char, min_size=1, max_size=16)  # at most 64 UTF-8 bytes
    if key in ("EMAILADDRESS", "DC"):
        return st.text(ascii_char, min_size=1, max_size=20)
    if key == "SERIALNUMBER":
        return st.text(printable_string_char, min_size=1, max_size=20)
    return st.text(any_char, min_size=1, max_size=20)


dn_pair = st.sampled_from(sorted(ALIASES)).flatmap(
    lambda key: st.tuples(st.just(key), dn_value(key))
)
dn_pairs = st.lists(dn_pair, min_size=1, max_size=5)


def escape_all(value: str) -> str:
    """A test-side RFC 4514 escaper that escapes more than strictly needed."""
    last = len(value) - 1
    return "".join(
        "\\" + c if c in ',+"\\=;<>#' or (c == " " and i in (0, last)) else c
        for i, c in enumerate(value)
    )


def hex_escape(value: str) -> str:
    return "".join(f"\\{b:02X}" for b in value.encode("utf-8"))


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def dn_texts(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    pairs = draw(dn_pairs)
    parts = []
    for key, value in pairs:
        alias = draw(st.sampled_from(ALIASES[key]))
        spell = draw(st.sampled_from([quote, escape_all, hex_escape]))
        text = spell(value)
        pad = draw(st.sampled_from(["", " ", "  "]))
        parts.append(f"{pad}{alias}{pad}={pad}{text}{pad}")
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from([",", ";", ", ", "; "])) + part
    return text, pairs


@QUICK
@given(dn_texts())
def test_parse_dn_reads_any_spelling(case: tuple[str, list[tuple[str, str]]]) -> None:
    text, pairs = case
    parsed = parse_dn(text)
    assert parsed == pairs
    canonical = format_dn(parsed)
    assert parse_dn(canonical) == pairs
    assert format_dn(parse_dn(canonical)) == canonical


@QUICK
@given(
    st.one_of(
        st.text(max_size=40),
        st.tuples(dn_texts(), st.integers(0, 200), st.sampled_from(list(',;=+"\\# \t'))).map(
            lambda t: t[0][0][: t[1]] + t[2] + t[0][0][t[1] :]
        ),
    )
)
def test_parse_dn_garbage(text: str) -> None:
    try:
        pairs = parse_dn(text)
    except PolicyError:
        return
    assert parse_dn(format_dn(pairs)) == pairs


# -- valid policies ------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
label = st.one_of(
    st.sampled_from(ALNUM),
    st.tuples(st.sampled_from(ALNUM), st.text(ALNUM + "-", max_size=8), st.sampled_from(ALNUM)).map(
        "".join
    ),
)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
dns_name = st.tuples(st.booleans(), hostname).map(lambda t: ("*." if t[0] else "") + t[1])
mailbox = st.tuples(st.text(ALNUM + "._+!#-", min_size=1, max_size=12), hostname).map(
    lambda t: f"{t[0]}@{t[1]}"
)
oid = st.one_of(
    st.sampled_from(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4", "2.5.29.37.0"]),
    st.tuples(
        st.integers(0, 1),
        st.integers(0, 39),
        st.lists(st.integers(0, 2**40), min_size=0, max_size=5),
    ).map(lambda t: ".".join(str(a) for a in (t[0], t[1], *t[2]))),
)
KEY_USAGES = [
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


RSA_KEY_PROPS = st.fixed_dictionaries(
    {},
    optional={
        "kty": st.sampled_from(["RSA", "RSA-HSM"]),
        "key_size": st.sampled_from([2048, 3072, 4096]),
        "exportable": st.booleans(),
        "reuse_key": st.booleans(),
    },
).filter(lambda props: not (props.get("kty", "").endswith("-HSM") and props.get("exportable")))
EC_KEY_PROPS = st.fixed_dictionaries(
    {"kty": st.sampled_from(["EC", "EC-HSM"])},
    optional={
        "crv": st.sampled_from(["P-256", "P-384", "P-521", "P-256K"]),
        "exportable": st.booleans(),
        "reuse_key": st.booleans(),
    },
).filter(lambda props: not (props["kty"].endswith("-HSM") and props.get("exportable")))
SANS = st.fixed_dictionaries(
    {},
    optional={
        "dns_names": st.lists(dns_name, max_size=4, unique_by=str.lower),
        "emails": st.lists(mailbox, max_size=3),
        "upns": st.lists(mailbox, max_size=2),
    },
)
X509_OPTIONAL = st.fixed_dictionaries(
    {},
    optional={
        "ekus": st.lists(oid, max_size=4),
        "key_usage": st.lists(st.sampled_from(KEY_USAGES), unique=True, max_size=4),
        "validity_months": st.integers(1, 1200),
    },
)
SUBJECT = st.one_of(st.just(""), dn_pairs.map(format_dn), dn_texts().map(lambda t: t[0]))
ISSUER = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(
            st.sampled_from(["Self", "Unknown", "self", "UNKNOWN"]),
            st.text(ALNUM + "-", min_size=1, max_size=30),
        ),
        "cty": st.sampled_from(["OV-SSL", "EV-SSL"]),
        "cert_transparency": st.booleans(),
    },
)
OTHER_PARTS = st.fixed_dictionaries(
    {},
    optional={
        "key_props": st.one_of(RSA_KEY_PROPS, EC_KEY_PROPS),
        "secret_props": st.fixed_dictionaries(
            {},
            optional={
                "contentType": st.sampled_from(["application/x-pkcs12", "application/x-pem-file"])
            },
        ),
        "issuer": ISSUER,
        "attributes": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "created": st.integers(0, 2**40),
                "updated": st.integers(0, 2**40),
                "recoveryLevel": st.just("Recoverable"),
                "recoverableDays": st.integers(7, 90),
            },
        ),
        "id": st.just("https://vault.example/certificates/c/policy"),
    },
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    x509: dict[str, Any] = draw(X509_OPTIONAL)
    subject = draw(SUBJECT)
    sans = draw(SANS)
    if not subject and not any(sans.values()):
        sans["dns_names"] = [draw(dns_name)]
    if bool(subject) or draw(st.booleans()):
        x509["subject"] = subject
    if bool(sans) or draw(st.booleans()):
        x509["sans"] = sans
    data: dict[str, Any] = {"x509_props": x509, **draw(OTHER_PARTS)}
    name = data.get("issuer", {}).get("name", "Unknown")
    manual = name.lower() == "unknown"
    months = x509.get("validity_months", 12)
    if draw(st.booleans()):
        kinds = ["EmailContacts"] if manual else ["EmailContacts", "AutoRenew"]
        actions = []
        for kind in draw(st.lists(st.sampled_from(kinds), unique=True, max_size=2)):
            if draw(st.booleans()):
                trigger = {"lifetime_percentage": draw(st.integers(1, 99))}
            else:
                trigger = {"days_before_expiry": draw(st.integers(1, months * 28 - 1))}
            actions.append({"trigger": trigger, "action": {"action_type": kind}})
        data["lifetime_actions"] = actions
    return data


@SETTINGS
@given(policies())
def test_valid_policies_round_trip(data: dict[str, Any]) -> None:
    policy = CertificatePolicy.from_kv_json(data)
    out = policy.to_kv_json()
    again = CertificatePolicy.from_kv_json(out)
    assert again == policy
    assert again.to_kv_json() == out
    assert CertificatePolicy.from_kv_json(json.dumps(out)) == policy
    assert again.fingerprint() == policy.fingerprint()
    assert policy.merged({}) == policy
    # defaults are resolved
    assert out["key_props"]["kty"] in ("RSA", "RSA-HSM", "EC", "EC-HSM")
    assert ("key_size" in out["key_props"]) != ("crv" in out["key_props"])
    assert "name" in out["issuer"]
    assert "lifetime_actions" in out


# -- bad input ----------------------------------------------------------------------

VOCAB = [
    "id",
    "key_props",
    "secret_props",
    "x509_props",
    "lifetime_actions",
    "issuer",
    "attributes",
    "kty",
    "key_size",
    "crv",
    "subject",
    "sans",
    "dns_names",
    "trigger",
    "action",
    "name",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**20000),
    st.floats(),
    st.text(max_size=10),
)
keys = st.one_of(st.sampled_from(VOCAB), st.text(max_size=5), st.integers(), st.none())
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def check_only_policy_errors(data: Any) -> None:
    try:
        CertificatePolicy.from_kv_json(data)
    except PolicyError as exc:
        assert str(exc)
        assert exc.errors


@QUICK
@given(st.one_of(json_like, st.text(max_size=50), st.binary(max_size=50)))
def test_garbage_raises_only_policy_error(data: Any) -> None:
    check_only_policy_errors(data)


@QUICK
@given(json_like)
def test_garbage_json_text_raises_only_policy_error(data: Any) -> None:
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return
    check_only_policy_errors(text)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += paths(v, (*prefix, i))
    return found


@QUICK
@given(policies(), st.data())
def test_random_subtree_replacement_raises_only_policy_error(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    target = draw.draw(st.sampled_from(paths(data)[1:] or [("x509_props",)]))
    mutated = copy.deepcopy(data)
    node: Any = mutated
    for part in target[:-1]:
        node = node[part]
    node[target[-1]] = draw.draw(json_like)
    check_only_policy_errors(mutated)


BAD_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("key_props", "kty"), "DSA"),
    (("key_props", "kty"), "rsa"),
    (("key_props", "kty"), 1),
    (("key_props", "key_size"), 1024),
    (("key_props", "key_size"), 2**70),
    (("key_props", "key_size"), "2048"),
    (("key_props", "key_size"), 2048.0),
    (("key_props", "key_size"), True),
    (("key_props", "exportable"), "true"),
    (("key_props", "reuse_key"), 0),
    (("key_props", "crv"), "P-192"),
    (("key_props", "crv"), 256),
    (("key_props", "bogus"), 1),
    (("key_props",), "RSA"),
    (("secret_props", "contentType"), "text/plain"),
    (("secret_props", "contentType"), ""),
    (("x509_props", "subject"), "XX=1"),
    (("x509_props", "subject"), "CN="),
    (("x509_props", "subject"), "C=USA"),
    (("x509_props", "subject"), "CN"),
    (("x509_props", "subject"), "CN=a+OU=b"),
    (("x509_props", "subject"), "CN=" + "x" * 65),
    (("x509_props", "subject"), 5),
    (("x509_props", "validity_months"), 0),
    (("x509_props", "validity_months"), 1201),
    (("x509_props", "validity_months"), 12.5),
    (("x509_props", "validity_months"), "12"),
    (("x509_props", "ekus"), ["1.2."]),
    (("x509_props", "ekus"), "1.3.6"),
    (("x509_props", "ekus"), [1]),
    (("x509_props", "key_usage"), ["signing"]),
    (("x509_props", "key_usage"), ["cRLSign", "cRLSign"]),
    (("x509_props", "sans", "dns_names"), ["a..b"]),
    (("x509_props", "sans", "dns_names"), ["-a.com"]),
    (("x509_props", "sans", "dns_names"), ["a.com", "A.com"]),
    (("x509_props", "sans", "dns_names"), "a.com"),
    (("x509_props", "sans", "dns_names"), ["a.com"] * 101),
    (("x509_props", "sans", "emails"), ["nope"]),
    (("x509_props", "sans", "upns"), ["a b@c.com"]),
    (("x509_props", "sans", "ips"), ["10.0.0.1"]),
    (("x509_props", "bogus"), 1),
    (("issuer", "name"), ""),
    (("issuer", "name"), "has space"),
    (("issuer", "name"), 7),
    (("issuer", "cty"), ""),
    (("attributes", "enabled"), "yes"),
    (("attributes", "bogus"), 1),
    (("lifetime_actions",), "AutoRenew"),
    (("lifetime_actions",), [1]),
    (("lifetime_actions",), [{"trigger": {}, "action": {"action_type": "EmailContacts"}}]),
    (
        ("lifetime_actions",),
        [{"trigger": {"lifetime_percentage": 100}, "action": {"action_type": "EmailContacts"}}],
    ),
    (
        ("lifetime_actions",),
        [{"trigger": {"days_before_expiry": 10**6}, "action": {"action_type": "EmailContacts"}}],
    ),
    (
        ("lifetime_actions",),
        [
            {"trigger": {"lifetime_percentage": 50}, "action": {"action_type": "EmailContacts"}},
            {"trigger": {"lifetime_percentage": 60}, "action": {"action_type": "EmailContacts"}},
        ],
    ),
    (("bogus",), 1),
]


@QUICK
@given(policies(), st.sampled_from(BAD_VALUES))
def test_one_bad_field_is_refused_with_its_path(
    data: dict[str, Any], bad: tuple[tuple[str, ...], Any]
) -> None:
    assert_refused_at(data, *bad)


BASE_POLICY: dict[str, Any] = {
    "key_props": {"kty": "RSA", "key_size": 2048},
    "x509_props": {"subject": "CN=a", "sans": {"dns_names": ["a.com"]}},
    "issuer": {"name": "Self"},
}


@pytest.mark.parametrize(("path", "value"), BAD_VALUES)
def test_every_bad_value_is_refused(path: tuple[str, ...], value: Any) -> None:
    assert_refused_at(BASE_POLICY, path, value)


def assert_refused_at(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    mutated = copy.deepcopy(data)
    node = mutated
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
    try:
        CertificatePolicy.from_kv_json(mutated)
    except PolicyError as exc:
        assert any(p.startswith(path[0]) for p, _ in exc.errors), str(exc)
    else:
        raise AssertionError(f"accepted {path}={value!r}")
