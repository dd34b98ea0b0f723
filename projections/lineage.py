"""What the reports need beside `v_versions`: X.509 facts, CA changes, outcomes, policies.

`v_lineage` holds, per version, the facts read once from its certificate (subject, issuer,
signature algorithm, SANs, usages, the certificate's own key), the public key's SPKI SHA-256,
what the CA changed from the request, what changed in the policy since the version before,
retries and how an unfinished operation ended. `v_policies` keeps every policy document the
ledger has seen, by its SHA-256, with the fields the compliance rules read.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from projections.rows import Rows
from projections.view import View, at, cid, js, js_of, loads, on
from projections.x509facts import spki_sha256, x509_facts

T = "v_lineage"
P = "v_policies"
H = "v_lineage_heads"


def certificate_facts(cert_der: str) -> dict[str, Any]:
    """The lineage columns read from a base64 DER certificate (see `x509_facts`)."""
    return x509_facts(cert_der)[0]


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
    keys = {T: ("cert_id", "version"), P: ("fingerprint",), H: ("cert_id",)}
    revision = 2
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
        f"CREATE TABLE IF NOT EXISTS {H} (cert_id TEXT PRIMARY KEY, policy_hash TEXT)",
    )

    def __init__(self, *, suffix: str = "", track: str | None = None) -> None:
        super().__init__(suffix=suffix, track=track)
        # Recently seen policies, parsed; the table is the truth, this only saves parsing.
        self._policies: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _policy(self, rows: Rows, fingerprint: str) -> dict[str, Any]:
        found = self._policies.get(fingerprint)
        if found is None:
            row = rows.get(P, fingerprint)
            found = loads(row["policy"]) if row else {}
            self._remember(fingerprint, found)
        return found

    def _remember(self, fingerprint: str, policy: dict[str, Any]) -> None:
        self._policies[fingerprint] = policy
        if len(self._policies) > 256:
            self._policies.popitem(last=False)

    def _set(self, rows: Rows, e: Any, values: dict[str, Any]) -> None:
        rows.patch(T, (cid(e), e.version), **values)

    def _open(self, rows: Rows, e: Any, values: dict[str, Any]) -> None:
        """A new version: what changed in the policy since the version before it."""
        head = rows.get(H, cid(e))
        changes = None
        if head is not None and head["policy_hash"] is not None:
            before = head["policy_hash"]
            if before == e.policy_fingerprint:
                changes = []
            else:
                changes = policy_changes(
                    self._policy(rows, before), self._policy(rows, e.policy_fingerprint)
                )
        rows.put(H, {"cert_id": cid(e), "policy_hash": e.policy_fingerprint})
        values.update(
            cert_id=cid(e),
            version=e.version,
            seq=e.originator_version,
            policy_hash=e.policy_fingerprint,
            policy_changes=None if changes is None else js(changes),
            retries=0,
        )
        rows.put(T, values, new=True)

    @on("Certificate.Registered")
    def registered(self, rows: Rows, e: Any) -> None:
        rows.put(H, {"cert_id": cid(e), "policy_hash": None}, new=True)

    @on("Certificate.PolicyReplaced")
    def policy(self, rows: Rows, e: Any) -> None:
        facts = policy_facts(e.policy)
        rows.add(
            P,
            {
                "fingerprint": e.fingerprint,
                "policy": js_of(e, "policy"),
                "first_seen": at(e),
                "validity_months": facts["validity_months"],
                "actions": facts["actions"],
            },
            least="first_seen",
        )
        self._remember(e.fingerprint, e.policy)

    @on("Certificate.OperationOpened")
    def opened(self, rows: Rows, e: Any) -> None:
        self._open(rows, e, {})

    @on("Certificate.KeyPairCreated")
    def key_pair(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, {"spki_sha256": spki_sha256(e.public_key_pem)})

    @on("Certificate.RetryScheduled")
    def retry(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, {"retries": e.attempt})

    @on("Certificate.X509Merged")
    def merged(self, rows: Rows, e: Any) -> None:
        values = dict(certificate_facts(e.cert_der))
        values.update(issued_at=at(e), ca_changes=js(e.ca_changes))
        self._set(rows, e, values)

    @on("Certificate.CertificateImported")
    def imported(self, rows: Rows, e: Any) -> None:
        values = dict(certificate_facts(e.cert_der))
        values.update(
            spki_sha256=spki_sha256(e.public_key_pem),
            issued_at=at(e),
            ca_changes=js({}),
        )
        self._open(rows, e, values)

    @on("Certificate.CancellationRequested")
    def cancel_requested(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, {"cancel_requested_at": at(e)})

    @on("Certificate.OperationCancelled")
    def cancelled(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, {"outcome": e.reason})

    @on("Certificate.OperationFailed")
    def failed(self, rows: Rows, e: Any) -> None:
        self._set(rows, e, {"outcome": e.message})
