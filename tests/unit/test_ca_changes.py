"""What a CA changed: the requested profile against the issued certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from ledger.pki import self_signed
from ledger.pki.csr import build_csr
from ledger.pki.issue import make_ca, sign_csr
from ledger.pki.names import CLIENT_AUTH, SERVER_AUTH, CertProfile
from ledger.profile import ca_changes

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
PROFILE = CertProfile(
    subject=[("CN", "app.example.com"), ("O", "Contoso")],
    dns_names=("app.example.com", "www.app.example.com"),
    emails=("ops@example.com",),
    validity_months=12,
)


def test_an_honoured_request_has_no_changes() -> None:
    cert = self_signed(ec.generate_private_key(ec.SECP256R1()), PROFILE, now=NOW)
    assert ca_changes(PROFILE, cert) == {}


def test_every_overridden_aspect_is_recorded() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued_profile = CertProfile(
        subject=[("CN", "app.example.com")],
        dns_names=("app.example.com",),
        ekus=(SERVER_AUTH,),
        key_usage=("digitalSignature",),
        validity_months=3,
    )
    cert = self_signed(key, issued_profile, now=NOW)

    changes = ca_changes(PROFILE, cert)

    assert set(changes) == {"subject", "dns_names", "emails", "key_usage", "ekus", "validity"}
    assert changes["subject"] == {
        "requested": "CN=app.example.com, O=Contoso",
        "issued": "CN=app.example.com",
    }
    assert changes["dns_names"] == {
        "requested": ["app.example.com", "www.app.example.com"],
        "issued": ["app.example.com"],
    }
    assert changes["emails"] == {"requested": ["ops@example.com"], "issued": []}
    assert changes["key_usage"] == {
        "requested": ["digitalSignature", "keyEncipherment"],
        "issued": ["digitalSignature"],
    }
    assert changes["ekus"] == {
        "requested": sorted([SERVER_AUTH, CLIENT_AUTH]),
        "issued": [SERVER_AUTH],
    }
    validity = changes["validity"]
    assert validity["requested"] == {"months": 12, "days": 365}
    assert validity["issued"]["days"] == (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert validity["issued"]["not_after"] == cert.not_valid_after_utc.isoformat()


def test_a_ca_certificate_expiring_first_shortens_the_validity() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_ca(ca_key, "Short CA", now=NOW - timedelta(days=3650 - 30), years=10)
    key = ec.generate_private_key(ec.SECP256R1())
    profile = CertProfile(subject=[("CN", "app.example.com")], dns_names=("app.example.com",))
    leaf = sign_csr(build_csr(key, profile), ca_key=ca_key, ca_cert=ca, profile=profile, now=NOW)
    changes = ca_changes(profile, leaf)
    assert list(changes) == ["validity"]
    assert changes["validity"]["issued"]["days"] < 40
