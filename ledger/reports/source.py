"""The rows a report reads: every version with its lineage facts, and the policies by hash.

One query reads everything (`v_versions` joined with `v_lineage` and `v_current`), so a
report over a whole ledger costs one pass over the views. For --as-of the same views are
rebuilt in memory from the log up to that point and read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.database import Db
from ledger.domain.errors import NotFound
from ledger.domain.ids import certificate_id

VERSION_COLUMNS = (
    "v.cert_id, v.generation, v.version, v.seq, v.status, v.origin, v.issuer, v.provider,"
    " v.order_ref, v.key_id, v.key_reused, v.kty, v.key_size, v.crv, v.exportable,"
    " v.csr_sha256, v.policy_hash, v.x5t, v.serial, v.nbf, v.exp, v.enabled, v.tags,"
    " v.created, v.promoted_at, v.superseded_at, v.previous_version, v.actor, v.request_id,"
    " v.error_code, l.policy_changes, l.spki_sha256, l.issued_at, l.certificate,"
    " l.issuer_cn, l.sig_alg, l.sig_hash, l.san_count, l.cert_kty, l.cert_key_size,"
    " l.cert_crv, l.ca_changes, l.retries, l.cancel_requested_at, l.outcome"
)

# The columns the compliance rules (and the timeline) read; the others are fetched as NULL.
RULE_FIELDS = frozenset(
    {
        "cert_id",
        "generation",
        "version",
        "seq",
        "status",
        "origin",
        "issuer",
        "provider",
        "key_id",
        "key_reused",
        "kty",
        "key_size",
        "crv",
        "policy_hash",
        "serial",
        "nbf",
        "exp",
        "promoted_at",
        "spki_sha256",
        "issuer_cn",
        "sig_alg",
        "sig_hash",
        "san_count",
        "cert_kty",
        "cert_key_size",
        "cert_crv",
    }
)


# What the rules alone read (the timeline also reads generation, seq, status, promoted_at).
CHECK_FIELDS = RULE_FIELDS - {"generation", "seq", "status", "key_reused", "promoted_at"}


def _columns(fields: frozenset[str] | None) -> str:
    names = [c.strip() for c in VERSION_COLUMNS.split(",")]
    if fields is None:
        return ", ".join(names)
    return ", ".join(c if c.split(".")[1] in fields else "NULL" for c in names)


@dataclass(slots=True)
class VersionRow:
    """One version as the views hold it (times are the views' fixed-width UTC text)."""

    cert_id: str
    generation: int
    version: str
    seq: int
    status: str
    origin: str
    issuer: str | None
    provider: str | None
    order_ref: str | None
    key_id: str | None
    key_reused: int | None
    kty: str | None
    key_size: int | None
    crv: str | None
    exportable: int | None
    csr_sha256: str | None
    policy_hash: str | None
    x5t: str | None
    serial: str | None
    nbf: str | None
    exp: str | None
    enabled: int
    tags: str | None
    created: str
    promoted_at: str | None
    superseded_at: str | None
    previous_version: str | None
    actor: str | None
    request_id: str | None
    error_code: str | None
    policy_changes: str | None  # JSON: null for a certificate's first version
    spki_sha256: str | None
    issued_at: str | None
    certificate: str | None  # JSON: subject, issuer, SANs, usages, signature algorithm
    issuer_cn: str | None
    sig_alg: str | None
    sig_hash: str | None
    san_count: int | None
    cert_kty: str | None
    cert_key_size: int | None
    cert_crv: str | None
    ca_changes: str | None
    retries: int | None
    cancel_requested_at: str | None
    outcome: str | None

    @property
    def has_certificate(self) -> bool:
        return self.nbf is not None and self.exp is not None

    @property
    def was_promoted(self) -> bool:
        return self.promoted_at is not None and self.has_certificate


@dataclass
class CertificateRows:
    """A certificate name and every version it has had (all generations), oldest first."""

    cert_id: str
    name: str
    state: str
    current_version: str | None
    generation: int
    policy_hash: str | None
    deleted_on: str | None
    versions: list[VersionRow] = field(default_factory=list)

    @property
    def current(self) -> VersionRow | None:
        if self.current_version is None or self.state != "active":
            return None
        for row in reversed(self.versions):
            if row.version == self.current_version:
                return row
        return None


IdRange = tuple[str, str | None]  # certificate ids from the first up to the second, excluded


def id_range(ids: IdRange) -> tuple[str, list[str]]:
    """The SQL condition (to append to a WHERE) and parameters of `cert_id` in `ids`."""
    low, high = ids
    if high is None:
        return " AND cert_id >= ?", [low]
    return " AND cert_id >= ? AND cert_id < ?", [low, high]


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_certificates(
    db: Db,
    names: Sequence[str] | None = None,
    *,
    for_rules: bool = False,
    ids: IdRange | None = None,
    fields: frozenset[str] | None = None,
) -> list[CertificateRows]:
    """Certificates by name (all when `names` is None) with their versions; unknown names raise.

    `for_rules` reads only what the compliance rules and the timeline need, `fields` only
    these columns (the others are None); `ids` limits the certificates to a range of ids
    (with `names` None).
    """
    within, bounds = "", list[str]()
    if ids is not None:
        within, bounds = id_range(ids)
    certs: dict[str, CertificateRows] = {}
    head = (
        "SELECT cert_id, name, state, version, generation, policy_hash, deleted_on FROM v_current"
    )
    if names is None:
        cert_rows = db.execute(
            f"{head} WHERE (state <> 'new' OR version IS NOT NULL){within}", bounds
        )
    else:
        wanted = list(dict.fromkeys(str(certificate_id(n)) for n in names))
        cert_rows = []
        for chunk in _chunks(wanted):
            marks = ", ".join("?" for _ in chunk)
            cert_rows += db.execute(f"{head} WHERE cert_id IN ({marks})", list(chunk))
        found = {str(r[0]) for r in cert_rows}
        missing = [n for n in names if str(certificate_id(n)) not in found]
        if missing:
            raise NotFound(f"certificate {missing[0]!r} not found")
    for cert_id, name, state, version, generation, policy_hash, deleted_on in cert_rows:
        certs[cert_id] = CertificateRows(
            cert_id, name, state, version, int(generation), policy_hash, deleted_on
        )
    sql = (
        f"SELECT {_columns(fields or (RULE_FIELDS if for_rules else None))} FROM v_versions v"
        " LEFT JOIN v_lineage l ON l.cert_id = v.cert_id AND l.version = v.version"
    )
    if names is None:
        rows = db.execute(
            f"{sql} WHERE 1 = 1{within.replace('cert_id', 'v.cert_id')}"
            " ORDER BY v.cert_id, v.generation, v.seq",
            bounds,
        )
    else:
        rows = []
        for chunk in _chunks(list(certs)):
            marks = ", ".join("?" for _ in chunk)
            rows += db.execute(
                f"{sql} WHERE v.cert_id IN ({marks}) ORDER BY v.cert_id, v.generation, v.seq",
                list(chunk),
            )
    for row in rows:
        cert = certs.get(row[0])
        if cert is not None:
            cert.versions.append(VersionRow(*row))
    return sorted((c for c in certs.values() if c.versions), key=lambda c: (c.name.lower(), c.name))


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """What the compliance rules read of a policy."""

    validity_months: int | None
    # (action type, lifetime percentage, days before expiry) of each lifetime action
    actions: tuple[tuple[str, int | None, int | None], ...]


class PolicyBook:
    """The compliance facts of policies by SHA-256, from `v_policies` (each policy's facts
    are made when first asked for)."""

    def __init__(self, db: Db | None, fingerprints: Iterable[str | None] | None = None) -> None:
        self._facts: dict[str, PolicyFacts] = {}
        self._rows: dict[str, tuple[int | None, str]] = {}
        self._actions: dict[str, tuple[tuple[str, int | None, int | None], ...]] = {}
        if db is None:
            return
        sql = "SELECT fingerprint, validity_months, actions FROM v_policies"
        if fingerprints is None:
            rows = db.execute(sql)
        else:
            wanted = sorted({f for f in fingerprints if f})
            rows = []
            for chunk in _chunks(wanted):
                marks = ", ".join("?" for _ in chunk)
                rows += db.execute(f"{sql} WHERE fingerprint IN ({marks})", list(chunk))
        self._add(rows)

    def _add(self, rows: Iterable[Sequence[Any]]) -> None:
        self._rows.update((fingerprint, (months, text)) for fingerprint, months, text in rows)

    def _made(self, fingerprint: str) -> PolicyFacts | None:
        row = self._rows.get(fingerprint)
        if row is None:
            return None
        months, text = row
        parsed = self._actions.get(text)
        if parsed is None:
            parsed = tuple((str(a), p, d) for a, p, d in json.loads(text))
            self._actions[text] = parsed
        facts = self._facts[fingerprint] = PolicyFacts(months, parsed)
        return facts

    @classmethod
    def of(cls, documents: dict[str, dict[str, Any]]) -> PolicyBook:
        """A book of the given policy documents, by fingerprint (no database)."""
        from projections.lineage import policy_facts

        book = cls(None)
        for fingerprint, policy in documents.items():
            facts = policy_facts(policy)
            book._facts[fingerprint] = PolicyFacts(
                facts["validity_months"],
                tuple((str(a), p, d) for a, p, d in json.loads(facts["actions"])),
            )
        return book

    def get(self, fingerprint: str | None) -> PolicyFacts | None:
        if not fingerprint:
            return None
        return self._facts.get(fingerprint) or self._made(fingerprint)


def policy_book_for(db: Db, certs: Sequence[CertificateRows], *, everything: bool) -> PolicyBook:
    """The policies the certificates' versions and current states name."""
    if everything:
        return PolicyBook(db)
    hashes: list[str | None] = []
    for cert in certs:
        hashes.append(cert.policy_hash)
        hashes.extend(v.policy_hash for v in cert.versions)
    return PolicyBook(db, hashes)
