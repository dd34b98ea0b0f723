"""What the reports need beside `v_versions`: X.509 facts, CA changes, outcomes, policies.

`v_lineage` holds, per version, the facts read once from its certificate (subject, issuer,
signature algorithm, SANs, usages, the certificate's own key), the public key's SPKI SHA-256,
what the CA changed from the request, what changed in the policy since the version before,
retries and how an unfinished operation ended. `v_policies` keeps every policy document the
ledger has seen, by its SHA-256, with the fields the compliance rules read.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from ledger.database import Cursor
from projections.view import View, cid, insert, iso, js, on, update

T = "v_lineage"
P = "v_policies"

# cryptography's curve names -> Key Vault's.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp256k1": "P-256K"}
_KEY_USAGE_ATTRS = (
    ("digitalSignature", "digital_signature"),
    ("nonRepudiation", "content_commitment"),
    ("keyEncipherment", "key_encipherment"),
    ("dataEncipherment", "data_encipherment"),
    ("keyAgreement", "key_agreement"),
    ("keyCertSign", "key_cert_sign"),
    ("cRLSign", "crl_sign"),
)


def spki_sha256(public_key_pem: str) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo inside a PEM public key."""
    body = "".join(line for line in public_key_pem.splitlines() if not line.startswith("-----"))
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def _key_facts(public_key: Any) -> tuple[str, int | None, str | None]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = public_key.curve.name
        return "EC", public_key.curve.key_size, _CURVES.get(name, name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "OKP", 256, "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "OKP", 456, "Ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, None
    return type(public_key).__name__, None, None


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str], list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    upns = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == "1.3.6.1.4.1.311.20.2.3" and other.value[:1] == b"\x0c":
            body = other.value[1:]
            skip = 1 + (body[0] & 0x7F if body[0] & 0x80 else 0)
            upns.append(body[skip:].decode("utf-8", "replace"))
    return (
        [str(v).lower() for v in san.get_values_for_type(x509.DNSName)],
        [str(v) for v in san.get_values_for_type(x509.RFC822Name)],
        upns,
        [str(v) for v in san.get_values_for_type(x509.IPAddress)],
    )


def _key_usage(cert: x509.Certificate) -> list[str]:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = [name for name, attr in _KEY_USAGE_ATTRS if getattr(ku, attr)]
    if ku.key_agreement:
        names += [
            n
            for n, a in (("encipherOnly", ku.encipher_only), ("decipherOnly", ku.decipher_only))
            if a
        ]
    return names


def _ekus(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [oid.dotted_string for oid in ext]


@lru_cache(maxsize=4096)
def certificate_facts(cert_der: str) -> dict[str, Any]:
    """The facts the reports show and check, read once from a base64 DER certificate.

    `certificate` is the JSON the lineage report shows; the other keys are the columns the
    compliance rules read.
    """
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_der))
    try:
        hash_algorithm = cert.signature_hash_algorithm
        sig_hash = hash_algorithm.name if hash_algorithm is not None else None
    except UnsupportedAlgorithm:
        sig_hash = "unknown"
    oid = cert.signature_algorithm_oid
    sig_alg = getattr(oid, "_name", None) or oid.dotted_string
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    kty, size, crv = _key_facts(cert.public_key())
    dns, emails, upns, ips = _sans(cert)
    shown = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": dns,
        "emails": emails,
        "upns": upns,
        "ip_addresses": ips,
        "key_usage": _key_usage(cert),
        "ekus": _ekus(cert),
        "signature_algorithm": sig_alg,
    }
    return {
        "certificate": js(shown),
        "issuer_cn": str(cns[0].value) if cns else None,
        "sig_alg": sig_alg,
        "sig_hash": sig_hash,
        "san_count": len(dns) + len(emails) + len(upns) + len(ips),
        "cert_kty": kty,
        "cert_key_size": size,
        "cert_crv": crv,
    }


def policy_facts(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy fields the compliance rules read, as columns of `v_policies`."""
    actions = [
        [
            a.get("action", {}).get("action_type"),
            a.get("trigger", {}).get("lifetime_percentage"),
            a.get("trigger", {}).get("days_before_expiry"),
        ]
        for a in policy.get("lifetime_actions", [])
    ]
    return {
        "validity_months": policy.get("x509_props", {}).get("validity_months"),
        "actions": js(actions),
    }


def _flatten(doc: dict[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    for key, value in doc.items():
        if type(value) is dict and value:
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = value
    return out


def policy_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field changed between two policy documents: {"path", "from", "to"}, by path.

    Paths are dotted (`x509_props.validity_months`); lists compare as whole values; a side
    without the field has null.
    """
    old, new = _flatten(before, "", {}), _flatten(after, "", {})
    return [
        {"path": path, "from": old.get(path), "to": new.get(path)}
        for path in sorted(old.keys() | new.keys())
        if old.get(path, _ABSENT) != new.get(path, _ABSENT)
    ]


_ABSENT = object()


class LineageView(View):
    name = "lineage"
    tables = (T, P)
    schema = (
        f"CREATE TABLE IF NOT EXISTS {T} ("
        " cert_id TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,"
        " policy_hash TEXT, policy_changes TEXT, spki_sha256 TEXT, issued_at TEXT,"
        " certificate TEXT, issuer_cn TEXT, sig_alg TEXT, sig_hash TEXT, san_count INTEGER,"
        " cert_kty TEXT, cert_key_size INTEGER, cert_crv TEXT, ca_changes TEXT,"
        " retries INTEGER NOT NULL, cancel_requested_at TEXT, outcome TEXT,"
        " PRIMARY KEY (cert_id, version))",
        f"CREATE INDEX IF NOT EXISTS {T}_by_seq ON {T} (cert_id, seq)",
        f"CREATE TABLE IF NOT EXISTS {P} ("
        " fingerprint TEXT PRIMARY KEY, policy TEXT NOT NULL, first_seen TEXT NOT NULL,"
        " validity_months INTEGER, actions TEXT NOT NULL)",
    )

    def __init__(self) -> None:
        # Recently seen policies, parsed; the table is the truth, this only saves reads.
        self._policies: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _policy(self, cur: Cursor, fingerprint: str) -> dict[str, Any]:
        found = self._policies.get(fingerprint)
        if found is None:
            rows = cur.execute(f"SELECT policy FROM {P} WHERE fingerprint = ?", [fingerprint])
            found = json.loads(rows[0][0]) if rows else {}
            self._remember(fingerprint, found)
        return found

    def _remember(self, fingerprint: str, policy: dict[str, Any]) -> None:
        self._policies[fingerprint] = policy
        if len(self._policies) > 256:
            self._policies.popitem(last=False)

    def _set(self, cur: Cursor, e: Any, values: dict[str, Any]) -> None:
        update(cur, T, {"cert_id": cid(e), "version": e.version}, values)

    def _open(self, cur: Cursor, e: Any, values: dict[str, Any]) -> None:
        """A new version: what changed in the policy since the version before it."""
        rows = cur.execute(
            f"SELECT policy_hash FROM {T} WHERE cert_id = ? ORDER BY seq DESC LIMIT 1", [cid(e)]
        )
        changes = None
        if rows:
            before = rows[0][0]
            if before == e.policy_fingerprint:
                changes = []
            else:
                changes = policy_changes(
                    self._policy(cur, before), self._policy(cur, e.policy_fingerprint)
                )
        values.update(
            cert_id=cid(e),
            version=e.version,
            seq=e.originator_version,
            policy_hash=e.policy_fingerprint,
            policy_changes=None if changes is None else js(changes),
            retries=0,
        )
        insert(cur, T, values)

    @on("Certificate.PolicyReplaced")
    def policy(self, cur: Cursor, e: Any) -> None:
        facts = policy_facts(e.policy)
        cur.run(
            f"INSERT INTO {P} (fingerprint, policy, first_seen, validity_months, actions)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
            [
                e.fingerprint,
                js(e.policy),
                iso(e.timestamp),
                facts["validity_months"],
                facts["actions"],
            ],
        )
        self._remember(e.fingerprint, e.policy)

    @on("Certificate.OperationOpened")
    def opened(self, cur: Cursor, e: Any) -> None:
        self._open(cur, e, {})

    @on("Certificate.KeyPairCreated")
    def key_pair(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, {"spki_sha256": spki_sha256(e.public_key_pem)})

    @on("Certificate.RetryScheduled")
    def retry(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, {"retries": e.attempt})

    @on("Certificate.X509Merged")
    def merged(self, cur: Cursor, e: Any) -> None:
        values = dict(certificate_facts(e.cert_der))
        values.update(issued_at=iso(e.timestamp), ca_changes=js(e.ca_changes))
        self._set(cur, e, values)

    @on("Certificate.CertificateImported")
    def imported(self, cur: Cursor, e: Any) -> None:
        values = dict(certificate_facts(e.cert_der))
        values.update(
            spki_sha256=spki_sha256(e.public_key_pem),
            issued_at=iso(e.timestamp),
            ca_changes=js({}),
        )
        self._open(cur, e, values)

    @on("Certificate.CancellationRequested")
    def cancel_requested(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, {"cancel_requested_at": iso(e.timestamp)})

    @on("Certificate.OperationCancelled")
    def cancelled(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, {"outcome": e.reason})

    @on("Certificate.OperationFailed")
    def failed(self, cur: Cursor, e: Any) -> None:
        self._set(cur, e, {"outcome": e.message})
