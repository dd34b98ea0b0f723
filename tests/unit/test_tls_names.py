"""The server certificate's names, and IP addresses in a policy's SANs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509

from ledger.api.tls import tls_names, tls_policy
from ledger.domain.policy import CertificatePolicy, PolicyError
from ledger.pki import generate_private_key, self_signed
from ledger.profile import ca_changes, policy_from_certificate, profile_from_policy


def test_loopback_names_are_always_there() -> None:
    assert tls_names(["localhost"], "127.0.0.1") == (["localhost"], ["127.0.0.1", "::1"])


def test_an_ip_host_is_added_and_unspecified_ones_are_not() -> None:
    assert tls_names(["Vault.Example"], "10.1.2.3") == (
        ["vault.example", "localhost"],
        ["10.1.2.3", "127.0.0.1", "::1"],
    )
    assert tls_names(["localhost"], "0.0.0.0")[1] == ["127.0.0.1", "::1"]
    assert tls_names(["localhost"], "::")[1] == ["127.0.0.1", "::1"]
    # A DNS --host is where to listen, not a name the certificate claims.
    assert tls_names(["localhost"], "myhost")[0] == ["localhost"]
    # --tls-host may name an address, written in any form.
    assert tls_names(["[0:0::1]", "192.168.0.9"])[1] == ["::1", "192.168.0.9", "127.0.0.1"]


def test_ip_sans_reach_the_certificate() -> None:
    policy = tls_policy(*tls_names(["localhost"], "127.0.0.1"))
    profile = profile_from_policy(policy)
    cert = self_signed(generate_private_key("EC", None, "P-256"), profile, now=datetime.now(UTC))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) == [
        "127.0.0.1",
        "::1",
    ]
    assert ca_changes(profile, cert) == {}
    inferred = policy_from_certificate(cert, "application/x-pem-file").to_kv_json()
    assert inferred["x509_props"]["sans"]["ip_addresses"] == ["127.0.0.1", "::1"]


def test_policy_ip_addresses_are_checked_and_absent_by_default() -> None:
    base = {"x509_props": {"subject": "CN=a"}, "issuer": {"name": "Self"}}
    assert (
        "ip_addresses"
        not in CertificatePolicy.from_kv_json(
            {**base, "x509_props": {"subject": "CN=a", "sans": {"dns_names": ["a.example"]}}}
        ).to_kv_json()["x509_props"]["sans"]
    )
    with pytest.raises(PolicyError, match="not a valid IP address"):
        CertificatePolicy.from_kv_json(
            {**base, "x509_props": {"subject": "CN=a", "sans": {"ip_addresses": ["1.2.3"]}}}
        )
