"""The ledger's audit log: its signing key, checkpoints, proofs and verification."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate

from ledger.audit import evidence
from ledger.audit.hashing import canonical_stream
from ledger.audit.note import (
    Checkpoint,
    NoteError,
    VerifierKey,
    check_key_name,
    cosign,
    open_checkpoint,
    raw_public_key,
    sign_checkpoint,
)
from ledger.audit.proofs import ProofError, verify_consistency
from ledger.audit.store import AuditStore, CheckpointRow
from ledger.audit.tree import Tree
from ledger.audit.verifier import Problem, Progress, SignedRoot, VerifyReport, verify_log
from ledger.domain.access import ACCESS_ID
from ledger.domain.audit_log import AUDIT_LOG_ID, AuditLog
from ledger.domain.certificate import Certificate
from ledger.domain.context import SYSTEM, Ctx
from ledger.domain.errors import BadParameter, Conflict, Forbidden, LedgerError, NotFound
from ledger.domain.ids import certificate_id
from ledger.domain.issuer import Issuer

if TYPE_CHECKING:
    from ledger.application import Ledger

LOG_KEY_OWNER = "audit:log"


def new_stream_labels(aggregates: Sequence[Aggregate]) -> tuple[tuple[str, str], ...]:
    """(stream, `certificate 'web'`) for each certificate or issuer saved for the first time."""
    labels = []
    for agg in aggregates:
        pending = agg.pending_events
        if not pending or pending[0].originator_version != 1:
            continue
        if isinstance(agg, Certificate):
            labels.append((str(agg.id), f"certificate {agg.name!r}"))
        elif isinstance(agg, Issuer):
            labels.append((str(agg.id), f"issuer {agg.name!r}"))
    return tuple(labels)


class AuditError(LedgerError):
    """The stored log contradicts a checkpoint; the log refuses to sign or prove."""

    code = "AuditLogInconsistent"


def default_origin(vault_url: str) -> str:
    """`<vault host>/certledger/<random>`: unique per ledger, fixed when the key is made."""
    host = urlsplit(vault_url).netloc or "localhost"
    return f"{host}/certledger/{uuid.uuid4().hex[:12]}"


class AuditService:
    """Checkpoints signed with the log key in custody; proofs from the stored tree."""

    def __init__(self, ledger: Ledger, store: AuditStore) -> None:
        self.ledger = ledger
        self.store = store
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    # -- the log key --------------------------------------------------------

    def log(self) -> AuditLog:
        """The AuditLog aggregate, creating the Ed25519 log key on first use.

        The key's custody rows are saved with `LogKeyCreated`, in one transaction.
        """
        found = self.ledger._load(AUDIT_LOG_ID, AuditLog, copy=False)
        if found is not None:
            return found
        origin = self.ledger.settings.audit_origin or default_origin(self.ledger.settings.vault_url)
        try:
            check_key_name(origin)
        except NoteError as exc:
            raise BadParameter(f"audit log origin: {exc}") from exc
        custody = self.ledger.custody
        handle = custody.generate(LOG_KEY_OWNER, "OKP", None, "Ed25519")
        signer = custody.signer(handle.key_id)
        assert isinstance(signer, Ed25519PrivateKey)
        public = raw_public_key(signer.public_key())
        log = AuditLog.create(
            Ctx(SYSTEM),
            origin=origin,
            key_id=handle.key_id,
            public_key=evidence.b64(public),
            verifier_key=VerifierKey.for_key(origin, public).encode(),
        )
        try:
            self.ledger.commit(log, custody=handle.writes)
        except Conflict:  # another process made the key first; ours was never saved
            other = self.ledger._load(AUDIT_LOG_ID, AuditLog, copy=False)
            assert other is not None
            return other
        return log

    def verifier_key(self) -> VerifierKey:
        """The key that signs checkpoints now."""
        return VerifierKey.parse(self.log().verifier_key)

    def verifier_keys(self) -> list[VerifierKey]:
        """Every key the log has signed with: the current one, then retired ones, newest first."""
        log = self.log()
        return [VerifierKey.parse(k) for k in (log.verifier_key, *reversed(log.retired_keys))]

    def rotate_key(self, ctx: Ctx) -> tuple[VerifierKey, VerifierKey, CheckpointRow]:
        """A new Ed25519 log key in custody; (retired key, new key, first checkpoint).

        The retiring key first signs a checkpoint of everything before the rotation; the
        rotation is an event; the first checkpoint after it, which covers that event, is
        signed by the new key and cosigned by the retiring one, so whoever kept the old
        key can follow to the new. Older checkpoints keep verifying with the retired key.
        """
        if ctx.actor not in self.ledger.access(copy=False).administrators:
            raise Forbidden(f"principal {ctx.actor!r} may not rotate the audit log key")
        self.checkpoint()
        with self._lock:
            found = self.ledger._load(AUDIT_LOG_ID, AuditLog)
            assert found is not None
            log = found
            retiring = self._signer(log)
            custody = self.ledger.custody
            handle = custody.generate(LOG_KEY_OWNER, "OKP", None, "Ed25519")
            signer = custody.signer(handle.key_id)
            assert isinstance(signer, Ed25519PrivateKey)
            public = raw_public_key(signer.public_key())
            new_key = VerifierKey.for_key(log.origin, public)
            old_key = VerifierKey.parse(log.verifier_key)
            log.rotate_key(
                ctx,
                key_id=handle.key_id,
                public_key=evidence.b64(public),
                verifier_key=new_key.encode(),
            )
            try:
                self.ledger.commit(log, custody=handle.writes)
            except Conflict as exc:
                raise Conflict("the audit log key changed concurrently; retry") from exc
        return old_key, new_key, self.checkpoint(cosigner=retiring)

    def _signer(self, log: AuditLog) -> Ed25519PrivateKey:
        key = self.ledger.custody.signer(log.key_id)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError("the audit log key in custody is not an Ed25519 key")
        return key

    # -- checkpoints --------------------------------------------------------

    def latest_checkpoint(self) -> CheckpointRow | None:
        return self.store.latest_checkpoint()

    def checkpoint(self, cosigner: Ed25519PrivateKey | None = None) -> CheckpointRow:
        """Sign the current tree, unless the latest checkpoint already covers it.

        A new checkpoint is signed only if the stored tree is consistent with the
        latest one (a log never signs two inconsistent views of itself). `cosigner`
        adds a second signature (a retiring key's).
        """
        log = self.log()
        with self._lock:
            size = self.store.size()
            latest = self.store.latest_checkpoint()
            if latest is not None and latest.size == size:
                return latest
            tree = self.tree(size)
            root = tree.root()
            if latest is not None:
                self._check_extends(latest, tree, root)
            note = sign_checkpoint(
                Checkpoint(log.origin, size, root), log.origin, self._signer(log)
            )
            if cosigner is not None:
                note = cosign(note, log.origin, cosigner)
            created = datetime.now(UTC).isoformat()
            self.store.add_checkpoint(size, root, note, created)
        found = self.store.latest_checkpoint()
        assert found is not None
        return found

    def checkpoint_if_grown(self) -> CheckpointRow | None:
        """A new checkpoint if the tree grew since the latest one, else None."""
        latest = self.store.latest_checkpoint()
        if latest is not None and latest.size == self.store.size():
            return None
        return self.checkpoint()

    def _check_extends(self, latest: CheckpointRow, tree: Tree, root: bytes) -> None:
        if latest.size > tree.size:
            raise AuditError(
                f"the log holds {tree.size} leaves but its checkpoint of size {latest.size} "
                "covers more: it was truncated; run `certledger audit verify`"
            )
        try:
            signed = open_checkpoint(latest.note, self.verifier_keys())
            if (signed.size, signed.root) != (latest.size, latest.root):
                raise NoteError("the checkpoint row differs from its signed note")
            if latest.size:
                proof = tree.consistency_proof(latest.size)
                verify_consistency(latest.size, tree.size, proof, latest.root, root)
        except (NoteError, ProofError) as exc:
            raise AuditError(
                f"the stored log is not consistent with its checkpoint of size {latest.size} "
                f"({exc}); refusing to sign; run `certledger audit verify`"
            ) from exc

    # -- proofs ---------------------------------------------------------------

    def tree(self, size: int | None = None) -> Tree:
        """The stored tree at `size` (default: all leaves), its node cache filled first."""
        size = self.store.size() if size is None else size
        try:
            self.store.fill_nodes(size)
        except LookupError as exc:
            raise AuditError(
                f"{exc}: the leaf rows are damaged; run `certledger audit verify`"
            ) from exc
        return Tree(self.store, size)

    def _covering_checkpoint(self, position: int) -> CheckpointRow:
        latest = self.store.latest_checkpoint()
        if latest is None or latest.size <= position:
            latest = self.checkpoint()
        return latest

    def certificate_evidence(self, name: str, since: str | None = None) -> dict[str, Any]:
        """Every stored event of certificate `name`, with inclusion proofs in a checkpoint."""
        stream = str(certificate_id(name))
        events = self.store.events_of_stream(stream)
        if not events:
            raise NotFound(f"certificate {name!r} has no events in the log")
        positions = []
        low = 0
        for event in events:
            position = self.store.position_of(stream, event.version, low)
            if position is None:
                raise AuditError(
                    f"event version {event.version} of certificate {name!r} has no leaf in "
                    "the log; run `certledger audit verify`"
                )
            positions.append(position)
            low = position + 1
        checkpoint = self._covering_checkpoint(positions[-1])
        tree = self.tree(checkpoint.size)
        bundle = self._bundle("certificate", checkpoint.note, certificate=name)
        bundle["stream"] = stream
        bundle["events"] = [
            evidence.event_item(p, e, tree.inclusion_proof(p))
            for p, e in zip(positions, events, strict=True)
        ]
        if since is not None:
            bundle["consistency"] = self._consistency_section(since, checkpoint, tree)
        return self._checked(bundle)

    def event_evidence(self, positions: list[int], since: str | None = None) -> dict[str, Any]:
        """Inclusion proofs of the events at `positions`."""
        if not positions:
            raise BadParameter("--position: give at least one position")
        checkpoint = self._covering_checkpoint(max(positions))
        tree = self.tree(checkpoint.size)
        items = []
        for position in sorted(set(positions)):
            leaf = self.store.leaf(position)
            if leaf is None or position < 0:
                raise NotFound(f"no event at position {position}")
            event = self.store.event(leaf.stream, leaf.version)
            if event is None:
                raise AuditError(
                    f"position {position}: its event is missing; run `certledger audit verify`"
                )
            items.append(evidence.event_item(position, event, tree.inclusion_proof(position)))
        bundle = self._bundle("events", checkpoint.note)
        bundle["events"] = items
        if since is not None:
            bundle["consistency"] = self._consistency_section(since, checkpoint, tree)
        return self._checked(bundle)

    def consistency_evidence(self, old_note: str) -> dict[str, Any]:
        """A consistency proof from an earlier checkpoint to the latest."""
        checkpoint = self.checkpoint()
        tree = self.tree(checkpoint.size)
        bundle = self._bundle("consistency", checkpoint.note)
        bundle["consistency"] = self._consistency_section(old_note, checkpoint, tree)
        return self._checked(bundle)

    def _bundle(self, kind: str, note: str, **extra: Any) -> dict[str, Any]:
        """A bundle naming the current key, and the retired ones if the key was rotated."""
        current, *retired = self.verifier_keys()
        bundle = evidence.bundle(kind, current.encode(), note, **extra)
        if retired:
            bundle["retired_keys"] = [k.encode() for k in retired]
        return bundle

    def _checked(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The bundle, once the offline verifier accepts it (a damaged tree gives bad proofs)."""
        from ledger.audit.verify_bundle import Refused, verify

        try:
            verify(bundle, self.verifier_keys())
        except (Refused, NoteError, ProofError) as exc:
            raise AuditError(
                f"the stored tree gives a proof that does not verify ({exc}); "
                "run `certledger audit verify`"
            ) from exc
        return bundle

    def _consistency_section(
        self, old_note: str, checkpoint: CheckpointRow, tree: Tree
    ) -> dict[str, Any]:
        try:
            old = open_checkpoint(old_note, self.verifier_keys())
        except NoteError as exc:
            raise BadParameter(f"the earlier checkpoint does not verify: {exc}") from exc
        if old.size > checkpoint.size:
            raise BadParameter(
                f"the earlier checkpoint (size {old.size}) is newer than the log's "
                f"latest (size {checkpoint.size})"
            )
        proof = tree.consistency_proof(old.size) if 0 < old.size < checkpoint.size else []
        return {"from": old_note, "proof": [evidence.b64(h) for h in proof]}

    # -- verification ---------------------------------------------------------

    def verify(
        self,
        *,
        against: str | None = None,
        key: VerifierKey | None = None,
        keys: Sequence[VerifierKey] = (),
        progress: Progress | None = None,
        every_leaf: bool = False,
        jobs: int | None = None,
    ) -> VerifyReport:
        """Recompute every leaf and root; check every checkpoint (and the kept one).

        `key` or `keys` are the verifier keys to trust (default: every key the log has
        signed with). `every_leaf` also compares every stored leaf row with its event (slower).
        """
        log = self.ledger._load(AUDIT_LOG_ID, AuditLog, copy=False)
        keys = [key] if key is not None else list(keys)
        if not keys and log is not None:
            keys = [VerifierKey.parse(k) for k in (log.verifier_key, *log.retired_keys)]
        problems: list[Problem] = []
        signed: list[SignedRoot] = []
        rows = self.store.checkpoints()
        if rows and not keys:
            problems.append(Problem(None, "checkpoints are stored but the log key is missing"))
        for row in rows if keys else []:
            try:
                cp = open_checkpoint(row.note, keys)
            except NoteError as exc:
                problems.append(Problem(None, f"stored checkpoint of size {row.size}: {exc}"))
                continue
            if (cp.size, cp.root) != (row.size, row.root):
                problems.append(
                    Problem(None, f"stored checkpoint of size {row.size} differs from its note")
                )
            signed.append(SignedRoot(cp.size, cp.root, f"the checkpoint of size {cp.size}"))
        kept: Checkpoint | None = None
        if against is not None:
            if not keys:
                raise BadParameter(
                    "the log has no key yet; give --public-key to check a checkpoint"
                )
            try:
                kept = open_checkpoint(against, keys)
            except NoteError as exc:
                raise BadParameter(f"the kept checkpoint does not verify: {exc}") from exc
            signed.append(SignedRoot(kept.size, kept.root, f"your checkpoint of size {kept.size}"))
        with self.store.snapshot():
            report = verify_log(
                self.store, signed, self.describe, progress, every_leaf=every_leaf, jobs=jobs
            )
        report.problems[:0] = problems
        if report.ok and rows:
            self._verify_consistency_proofs(report, rows, kept)
        return report

    def _verify_consistency_proofs(
        self, report: VerifyReport, rows: list[CheckpointRow], kept: Checkpoint | None
    ) -> None:
        """Consistency proofs, as a client would check them: previous and kept -> latest."""
        latest = rows[-1]
        tree = Tree(self.store, latest.size)  # read only: what is not cached is recomputed
        earlier = [(r.size, r.root, f"the checkpoint of size {r.size}") for r in rows[-2:-1]]
        if kept is not None:
            earlier.append((kept.size, kept.root, f"your checkpoint of size {kept.size}"))
        for size, root, label in earlier:
            if size > latest.size:
                continue
            try:
                proof = tree.consistency_proof(size) if 0 < size < latest.size else []
                if size:
                    verify_consistency(size, latest.size, proof, root, latest.root)
            except ProofError as exc:
                report.problems.append(Problem(None, f"{label} vs the latest: {exc}"))

    def describe(self, stream: str) -> str:
        """What a stream is, for people: `certificate 'web'`, `issuer 'corp'`, ..."""
        try:
            sid = UUID(stream)
        except ValueError:
            return f"stream {stream}"
        if sid == ACCESS_ID:
            return "the access control list"
        if sid == AUDIT_LOG_ID:
            return "the audit log"
        try:
            first = self.ledger.recorder.select_events(sid, lte=1)
            event = self.ledger.mapper.to_domain_event(first[0]) if first else None
        except Exception:  # a damaged event cannot be decoded: say what we know
            event = None
        name = getattr(event, "name", None)
        if isinstance(event, Certificate.Registered) and isinstance(name, str):
            return f"certificate {name!r}"
        if isinstance(event, Issuer.Registered) and isinstance(name, str):
            return f"issuer {name!r}"
        # Its first event is gone or damaged: the name it was given when it began.
        label = self.store.stream_label(canonical_stream(sid))
        return label if label is not None else f"stream {canonical_stream(sid)}"
