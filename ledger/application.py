"""The ledger application: one method per command, each saving events atomically."""

from __future__ import annotations

import base64
import contextlib
import functools
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ledger.audit.service import AuditService, new_stream_labels
from ledger.audit.store import open_audit_store
from ledger.database import schema_lock
from ledger.domain.access import ACCESS_ID, AccessControl
from ledger.domain.certificate import Certificate, Version, X509Facts
from ledger.domain.contacts import CONTACTS_ID, Contacts, check_contacts
from ledger.domain.context import SYSTEM, Ctx
from ledger.domain.errors import (
    BadParameter,
    ConcurrentChange,
    Conflict,
    Forbidden,
    IssuerNotFound,
    NotFound,
)
from ledger.domain.ids import certificate_id, check_name, issuer_id
from ledger.domain.issuer import RESERVED_ISSUERS, Issuer
from ledger.domain.policy import CertificatePolicy, PolicyError
from ledger.keys.custody import KeyCustody
from ledger.keys.store import CustodyRow
from ledger.pause import Pause, sleeping_pause
from ledger.pki import (
    BundleImportError,
    CertificateExpiredError,
    CertificateParseError,
    KeyMismatchError,
    build_csr,
    check_validity,
    load_certificates,
    load_import,
    order_chain,
    sha256_fingerprint,
    x5t,
)
from ledger.profile import ca_changes, policy_from_certificate, profile_from_policy
from ledger.providers.base import IssuerConfig, ProviderRegistry
from ledger.settings import Settings

if TYPE_CHECKING:
    from ledger.backup import BackupCodec

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"

A = TypeVar("A", bound=Aggregate)
P = ParamSpec("P")
R = TypeVar("R")
RACE_ATTEMPTS = 5  # tries of a command whose aggregate other writers keep changing


def retried(command: Callable[P, R]) -> Callable[P, R]:
    """A command run again, on the new state, when another writer (a worker, another API
    process) saved its aggregate between its load and its save; after `RACE_ATTEMPTS`
    tries the conflict stands (409). For commands that load what they change and touch
    nothing outside the database."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, RACE_ATTEMPTS):
            try:
                return command(*args, **kwargs)
            except ConcurrentChange:
                time.sleep(random.uniform(0, 0.005 * attempt))
        return command(*args, **kwargs)

    return run


SIGN_ALGORITHMS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "RS256": ("RSA", hashes.SHA256()),
    "RS384": ("RSA", hashes.SHA384()),
    "RS512": ("RSA", hashes.SHA512()),
    "PS256": ("RSA-PSS", hashes.SHA256()),
    "PS384": ("RSA-PSS", hashes.SHA384()),
    "PS512": ("RSA-PSS", hashes.SHA512()),
    "ES256": ("EC", hashes.SHA256()),
    "ES384": ("EC", hashes.SHA384()),
    "ES512": ("EC", hashes.SHA512()),
    "ES256K": ("EC", hashes.SHA256()),
}
# JWA binds each ECDSA algorithm to one curve (RFC 7518 section 3.4, RFC 8812).
EC_ALGORITHM_CURVES = {
    "ES256": "secp256r1",
    "ES384": "secp384r1",
    "ES512": "secp521r1",
    "ES256K": "secp256k1",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def x509_facts(cert: x509.Certificate, chain: list[x509.Certificate]) -> X509Facts:
    der = serialization.Encoding.DER
    return X509Facts(
        cert_der=b64(cert.public_bytes(der)),
        chain_der=[b64(c.public_bytes(der)) for c in chain],
        x5t=x5t(cert),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def key_owner(cert: Certificate) -> str:
    """Custody owner of a certificate's keys: one data key per name and generation."""
    return f"cert:{cert.name.lower()}:{cert.generation}"


def load_version_cert(version: Version) -> x509.Certificate:
    assert version.cert_der is not None
    return x509.load_der_x509_certificate(base64.b64decode(version.cert_der))


def _signing(algorithm: str, digest: bytes, field: str) -> tuple[str, hashes.HashAlgorithm]:
    """The key family and hash of a Key Vault signing algorithm, for a digest of its size."""
    spec = SIGN_ALGORITHMS.get(algorithm)
    if spec is None:
        raise BadParameter(f"alg: unsupported signing algorithm {algorithm!r}")
    family, hash_alg = spec
    if len(digest) != hash_alg.digest_size:
        raise BadParameter(
            f"{field}: a {algorithm} digest is {hash_alg.digest_size} bytes, not {len(digest)}"
        )
    return family, hash_alg


class Ledger(Application[UUID]):
    """Commands on certificates, issuers and access grants."""

    def __init__(
        self,
        settings: Settings,
        custody: KeyCustody,
        providers: ProviderRegistry,
        clock: Callable[[], datetime] | None = None,
        pause: Pause | None = None,
    ) -> None:
        settings.home.mkdir(parents=True, exist_ok=True)
        super().__init__(
            env={
                **settings.database.eventsourcing_env(),
                "AGGREGATE_CACHE_MAXSIZE": "1000",
                "CREATE_TABLE": "no",  # created below, one process at a time
            }
        )
        with schema_lock(settings.database):
            cast(Any, self.recorder).create_table()
        self.settings = settings
        self.custody = custody
        self.providers = providers
        self.now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._policies: dict[str, CertificatePolicy] = {}
        # Called with a step's name right after the step is saved (crash tests).
        self.pause: Pause = pause or sleeping_pause(settings.worker.pause_at)
        self._stepwise_create = pause is not None or settings.worker.pause_at in ("key_pair", "csr")
        # The worker saves a CA's immediate answer with its order, unless crash tests pause
        # between the two.
        self.stepwise_issue = pause is not None or settings.worker.pause_at in (
            "order",
            "certificate",
        )
        # The Merkle audit log, kept on both backends.
        self.audit = AuditService(self, open_audit_store(settings.database))
        self.audit.store.backfill()  # before any write: leaves for events stored before the log
        self._bootstrap_access()

    # -- plumbing ---------------------------------------------------------

    def checkpoint(self) -> None:
        """Sign a checkpoint of the audit log."""
        self.audit.checkpoint()

    def require_audit(self) -> AuditService:
        return self.audit

    def close(self) -> None:
        super().close()
        self.providers.close()
        self.audit.close()
        self.custody.close()

    def commit(self, *aggregates: Aggregate, custody: tuple[CustodyRow, ...] = ()) -> None:
        """Save the aggregates' new events, and the custody rows they reference, atomically."""
        try:
            self.save(
                *aggregates, custody_rows=custody, stream_labels=new_stream_labels(aggregates)
            )
        except IntegrityError as exc:
            what = type(aggregates[0]).__name__.lower() if aggregates else "ledger"
            raise ConcurrentChange(f"the {what} changed concurrently; retry the request") from exc

    def _load(self, aggregate_id: UUID, cls: type[A], *, copy: bool = True) -> A | None:
        """The aggregate, or None; `copy=False` shares the cached object (read only!)."""
        try:
            found: Aggregate = self.repository.get(aggregate_id, deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None
        assert isinstance(found, cls)
        return found

    def _bootstrap_access(self) -> None:
        if self._load(ACCESS_ID, AccessControl) is None:
            access = AccessControl.bootstrap(Ctx(SYSTEM), self.settings.administrator)
            with contextlib.suppress(IntegrityError):  # another process bootstrapped it
                self.save(access)

    def access(self, *, copy: bool = True) -> AccessControl:
        found = self._load(ACCESS_ID, AccessControl, copy=copy)
        assert found is not None
        return found

    def authorize(self, ctx: Ctx, permission: str, target: str) -> None:
        """Raise Forbidden, and record the denial, unless `ctx.actor` holds `permission`."""
        for _ in range(5):
            if self.access(copy=False).allows(ctx.actor, permission):
                return
            access = self.access()
            access.record_denial(ctx, permission, target)
            try:
                self.save(access)
                break
            except IntegrityError:
                continue
        raise Forbidden(
            f"principal {ctx.actor!r} lacks the certificates/{permission} permission on {target}"
        )

    def find_certificate(self, name: str) -> Certificate | None:
        check_name(name)
        return self._load(certificate_id(name), Certificate)

    def certificate(self, name: str) -> Certificate:
        """A live certificate (it may have only a pending operation)."""
        cert = self.find_certificate(name)
        if cert is None or not cert.exists:
            raise NotFound(f"certificate {name!r} not found")
        return cert

    def policy_of(self, cert: Certificate) -> CertificatePolicy:
        """The certificate's stored policy (parsed once per fingerprint)."""
        if cert.policy is None or cert.policy_fingerprint is None:
            raise NotFound(f"certificate {cert.name!r} has no policy")
        policy = self._policies.get(cert.policy_fingerprint)
        if policy is None:
            if len(self._policies) >= 1000:
                self._policies.clear()
            policy = CertificatePolicy.from_kv_json(cert.policy)
            self._policies[cert.policy_fingerprint] = policy
        return policy

    # -- creation ---------------------------------------------------------

    def create_certificate(
        self,
        ctx: Ctx,
        name: str,
        policy: CertificatePolicy | None = None,
        *,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> Certificate:
        """Accept a create: key pair and CSR now, the rest for the worker or a merge.

        `enabled=False` makes the new version come out disabled (its key and secret
        inoperable until it is enabled), as Key Vault does.
        """
        self.authorize(ctx, "create", f"certificates/{name}")
        cert = self.find_certificate(name) or Certificate.register(ctx, name)
        if policy is None:
            if cert.policy is None:
                raise BadParameter(
                    f"certificate {name!r} does not exist: its first creation needs a policy"
                )
            policy = self.policy_of(cert)
        issuer_name = self._resolve_issuer(policy)
        cert.replace_policy(ctx, policy.to_kv_json(), policy.fingerprint())
        version = uuid.uuid4().hex
        cert.open_operation(
            ctx,
            version,
            issuer_name,
            policy.secret_props.contentType,
            tags=tags or {},
            enabled=enabled,
        )

        if self._stepwise_create:
            # Saved step by step, so a crash can be tested between them.
            writes = self.make_key_pair(ctx, cert, policy)
            self.commit(cert, custody=writes)
            self.pause("key_pair")
            self.issue_csr(ctx, cert, policy)
            self.commit(cert)
            self.pause("csr")
            return cert
        writes = self.make_key_pair(ctx, cert, policy)
        self.issue_csr(ctx, cert, policy)
        self.commit(cert, custody=writes)
        return cert

    def make_key_pair(
        self, ctx: Ctx, cert: Certificate, policy: CertificatePolicy | None = None
    ) -> tuple[CustodyRow, ...]:
        """`KeyPairCreated` for the pending version; the custody rows to save with it."""
        key_props = (policy or self.policy_of(cert)).key_props
        previous = cert.versions.get(cert.current) if cert.current else None
        reuse = (
            key_props.reuse_key
            and previous is not None
            and previous.key_id is not None
            and previous.kty == key_props.kty
            and previous.key_size == key_props.key_size
            and previous.crv == key_props.crv
        )
        writes: tuple[CustodyRow, ...] = ()
        if reuse and previous is not None and previous.key_id is not None:
            key_id = previous.key_id
        else:
            handle = self.custody.generate(
                key_owner(cert), key_props.kty, key_props.key_size, key_props.crv
            )
            key_id, writes = handle.key_id, handle.writes
        public = self.custody.signer(key_id).public_key()
        cert.create_key_pair(
            ctx,
            key_id=key_id,
            kty=key_props.kty,
            key_size=key_props.key_size,
            crv=key_props.crv,
            public_key_pem=public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            exportable=key_props.exportable,
            reused=bool(reuse),
        )
        return writes

    def issue_csr(
        self, ctx: Ctx, cert: Certificate, policy: CertificatePolicy | None = None
    ) -> None:
        """`CsrIssued` for the pending version, signed with its key in custody."""
        version = cert.pending_version()
        assert version.key_id is not None
        signer = self.custody.signer(version.key_id)
        profile = profile_from_policy(policy or self.policy_of(cert))
        csr_der = build_csr(signer, profile).public_bytes(serialization.Encoding.DER)
        cert.issue_csr(ctx, b64(csr_der), sha256_fingerprint(csr_der))

    def _resolve_issuer(self, policy: CertificatePolicy) -> str:
        name = policy.issuer_name
        if name.lower() in RESERVED_ISSUERS:
            return "Self" if name.lower() == "self" else "Unknown"
        issuer = self._load(issuer_id(name), Issuer)
        if issuer is None or issuer.deleted:
            raise BadParameter(f"issuer.name: issuer {name!r} does not exist")
        if not issuer.enabled:
            raise BadParameter(f"issuer.name: issuer {name!r} is disabled")
        return issuer.name

    @retried
    def merge_certificate(self, ctx: Ctx, name: str, data: bytes | str) -> Certificate:
        """A user's merge of the CA-signed certificate: completes the operation at once."""
        self.authorize(ctx, "create", f"certificates/{name}")
        cert = self.certificate(name)
        op = cert.require_in_progress()
        if op.issuer_name != "Unknown":
            raise Conflict(
                f"certificate {name!r} is issued by {op.issuer_name!r}; only issuer Unknown merges"
            )
        pending = cert.pending_version()
        assert pending.public_key_pem is not None
        public = serialization.load_pem_public_key(pending.public_key_pem.encode())
        try:
            leaf, chain = order_chain(load_certificates(data), public)
            check_validity(leaf, self.now())
        except (CertificateParseError, KeyMismatchError, CertificateExpiredError) as exc:
            reason = str(exc)
            if isinstance(exc, KeyMismatchError):
                reason = "its public key is not the pending key pair's"
            raise BadParameter(f"cannot merge into {name!r}: {reason}") from exc
        changes = ca_changes(profile_from_policy(self.policy_of(cert)), leaf)
        cert.merge_x509(ctx, x509_facts(leaf, chain), source="merge", ca_changes=changes)
        cert.promote(ctx)
        self.commit(cert)
        return cert

    @retried
    def cancel_operation(self, ctx: Ctx, name: str) -> Certificate:
        self.authorize(ctx, "update", f"certificates/{name}/pending")
        cert = self.certificate(name)
        cert.request_cancellation(ctx)
        self.commit(cert)
        return cert

    @retried
    def delete_operation(self, ctx: Ctx, name: str) -> Certificate:
        self.authorize(ctx, "delete", f"certificates/{name}/pending")
        cert = self.certificate(name)
        op = cert.require_operation()
        if op.in_progress:
            cert.cancel(ctx, "The operation was deleted.")
        cert.delete_operation(ctx)
        self.commit(cert)
        return cert

    # -- import, attributes, policy --------------------------------------

    def import_certificate(
        self,
        ctx: Ctx,
        name: str,
        data: bytes,
        *,
        password: str | None = None,
        policy: CertificatePolicy | None = None,
    ) -> Certificate:
        self.authorize(ctx, "import", f"certificates/{name}")
        try:
            bundle = load_import(data, password)
            check_validity(bundle.cert, self.now())
        except (BundleImportError, CertificateParseError, CertificateExpiredError) as exc:
            raise BadParameter(f"cannot import into {name!r}: {exc}") from exc
        except ValueError as exc:
            raise BadParameter(f"cannot import into {name!r}: {exc}") from exc
        cert = self.find_certificate(name) or Certificate.register(ctx, name)
        content_type = PEM if data.lstrip().startswith(b"-----") else PKCS12
        if policy is None and cert.policy is None:
            policy = policy_from_certificate(bundle.cert, content_type)
        if policy is not None:
            cert.replace_policy(ctx, policy.to_kv_json(), policy.fingerprint())
        stored = self.policy_of(cert)
        if stored.key_props.kty.endswith("-HSM"):
            raise BadParameter(
                f"cannot import into {name!r}: its policy asks for an {stored.key_props.kty} key, "
                "and a private key cannot be imported into the HSM; import with a policy whose "
                "key_props.kty is RSA or EC"
            )
        handle = self.custody.import_private_key(key_owner(cert), bundle.key)
        cert.import_version(
            ctx,
            version=uuid.uuid4().hex,
            key_id=handle.key_id,
            kty=handle.kty,
            key_size=handle.key_size,
            crv=handle.crv,
            public_key_pem=handle.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            content_type=stored.secret_props.contentType,
            facts=x509_facts(bundle.cert, bundle.chain),
        )
        self.commit(cert, custody=handle.writes)
        return cert

    @retried
    def update_certificate(
        self,
        ctx: Ctx,
        name: str,
        version: str | None = None,
        *,
        enabled: bool | None = None,
        tags: dict[str, str] | None = None,
    ) -> Version:
        self.authorize(ctx, "update", f"certificates/{name}")
        cert = self.certificate(name)
        updated = cert.update_attributes(ctx, version, enabled=enabled, tags=tags)
        self.commit(cert)
        return cert.versions[updated.version]

    @retried
    def update_policy(self, ctx: Ctx, name: str, patch: dict[str, Any]) -> CertificatePolicy:
        """Key Vault's PATCH of a policy: merged onto the stored one."""
        self.authorize(ctx, "update", f"certificates/{name}/policy")
        cert = self.certificate(name)
        policy = self.policy_of(cert).merged(patch)
        self._resolve_issuer(policy)
        cert.replace_policy(ctx, policy.to_kv_json(), policy.fingerprint())
        self.commit(cert)
        return policy

    # -- deletion ---------------------------------------------------------

    @retried
    def delete_certificate(self, ctx: Ctx, name: str) -> Certificate:
        self.authorize(ctx, "delete", f"certificates/{name}")
        cert = self.find_certificate(name)
        if cert is None:
            raise NotFound(f"certificate {name!r} not found")
        if cert.operation is not None and cert.operation.in_progress:
            cert.cancel(ctx, "The certificate was deleted.")
        cert.delete(ctx, self.settings.recoverable_days)
        self.commit(cert)
        self.checkpoint()  # a signed tree head covering the deletion, before we answer
        return cert

    def deleted_certificate(self, name: str) -> Certificate:
        cert = self.find_certificate(name)
        if cert is None or not cert.is_deleted:
            raise NotFound(f"deleted certificate {name!r} not found")
        return cert

    @retried
    def recover_certificate(self, ctx: Ctx, name: str) -> Certificate:
        self.authorize(ctx, "recover", f"deletedcertificates/{name}")
        cert = self.deleted_certificate(name)
        cert.recover(ctx)
        self.commit(cert)
        self.checkpoint()
        return cert

    def purge_certificate(self, ctx: Ctx, name: str) -> None:
        self.authorize(ctx, "purge", f"deletedcertificates/{name}")
        self._purge(ctx, self.deleted_certificate(name))

    def purge_if_due(self, cert_id: UUID) -> bool:
        """Purge a deleted certificate whose retention period has ended (actor: the system)."""
        cert = self._load(cert_id, Certificate)
        if cert is None or not cert.purge_due(self.now()):
            return False
        self._purge(Ctx(SYSTEM), cert)
        return True

    def _purge(self, ctx: Ctx, cert: Certificate) -> None:
        """`Purged`, then the data key and encrypted keys destroyed (crypto-shredding)."""
        owner = key_owner(cert)
        cert.purge(ctx)
        self.commit(cert)
        self.custody.destroy_owner(owner)
        self.checkpoint()

    # -- the managed key and secret ---------------------------------------

    def operable_version(self, ctx: Ctx, name: str, version: str | None, use: str) -> Version:
        """A version whose key and secret may be used now, or Forbidden naming why not."""
        self.authorize(ctx, "get", f"certificates/{name}")
        v = self.certificate(name).version_of(version)
        now = self.now()
        if not v.enabled:
            raise Forbidden(
                f"certificate {name!r} version {v.version} is disabled: its {use} is inoperable"
            )
        assert v.not_before is not None and v.not_after is not None
        if now < v.not_before or now > v.not_after:
            raise Forbidden(
                f"certificate {name!r} version {v.version} is outside its validity window "
                f"({v.not_before.isoformat()} to {v.not_after.isoformat()}): "
                f"its {use} is inoperable"
            )
        return v

    def secret_value(self, ctx: Ctx, name: str, version: str | None = None) -> tuple[str, Version]:
        """The secret's value: PKCS#12 (base64) or PEM, with the key only when exportable."""
        from ledger.pki import to_pem, to_pkcs12

        v = self.operable_version(ctx, name, version, "secret")
        leaf = load_version_cert(v)
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in v.chain_der]
        key = self.custody.export_private_key(v.key_id) if v.exportable and v.key_id else None
        if key is not None and not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise BadParameter(f"certificate {name!r} has a key that a secret cannot hold")
        if v.content_type == PEM:
            return to_pem(key, leaf, chain), v
        return b64(to_pkcs12(key, leaf, chain, friendly_name=name)), v

    def sign(
        self, ctx: Ctx, name: str, version: str | None, algorithm: str, digest: bytes
    ) -> tuple[bytes, Version]:
        """Sign a digest with the certificate's key; the key never leaves custody."""
        v = self.operable_version(ctx, name, version, "key")
        family, hash_alg = _signing(algorithm, digest, "value")
        assert v.key_id is not None
        key = self.custody.signer(v.key_id)
        prehashed = utils.Prehashed(hash_alg)
        if isinstance(key, rsa.RSAPrivateKey) and family.startswith("RSA"):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if family == "RSA"
                else padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
            )
            return key.sign(digest, pad, prehashed), v
        if (
            isinstance(key, ec.EllipticCurvePrivateKey)
            and family == "EC"
            and key.curve.name == EC_ALGORITHM_CURVES[algorithm]
        ):
            der_sig = key.sign(digest, ec.ECDSA(prehashed))
            r, s = utils.decode_dss_signature(der_sig)
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big"), v
        curve = f" {v.crv}" if v.crv else ""
        raise BadParameter(f"alg: {algorithm} does not fit a {v.kty}{curve} key")

    def verify(
        self,
        ctx: Ctx,
        name: str,
        version: str | None,
        algorithm: str,
        digest: bytes,
        signature: bytes,
    ) -> bool:
        """Check a signature of a digest with the certificate's public key."""
        from ledger.pki.signature import verify_digest

        v = self.operable_version(ctx, name, version, "key")
        family, hash_alg = _signing(algorithm, digest, "digest")
        assert v.public_key_pem is not None
        public = serialization.load_pem_public_key(v.public_key_pem.encode())
        return verify_digest(public, family, hash_alg, digest, signature)

    # -- backup and restore -----------------------------------------------

    def backup_codec(self) -> BackupCodec:
        from ledger.backup import BackupCodec
        from ledger.keys.master import load_key

        key = load_key(
            self.settings.backup_key_file,
            self.settings.backup_key_b64,
            "CERTLEDGER_BACKUP_KEY",
            "backup key",
        )
        return BackupCodec(key)

    def backup_certificate(self, ctx: Ctx, name: str) -> bytes:
        """An encrypted blob of the certificate's history and keys (see ledger/backup.py)."""
        from ledger.backup import make_backup

        self.authorize(ctx, "backup", f"certificates/{name}")
        return make_backup(self, self.backup_codec(), self.certificate(name))

    def restore_certificate(self, ctx: Ctx, blob: bytes) -> Certificate:
        from ledger.backup import restore_backup

        self.authorize(ctx, "restore", "certificates")
        return restore_backup(self, self.backup_codec(), ctx, blob)

    # -- issuers ----------------------------------------------------------

    def set_issuer(
        self,
        ctx: Ctx,
        name: str,
        *,
        provider: str,
        account_id: str | None = None,
        password: str | None = None,
        org_id: str | None = None,
        admin_contacts: list[dict[str, str]] | None = None,
        enabled: bool = True,
        provider_params: dict[str, Any] | None = None,
    ) -> Issuer:
        """Create or replace an issuer object.

        `provider_params` are provider-specific settings (e.g. an ACME directory URL) that the
        provider's `setup` checks and keeps in the issuer's provider state.
        """
        self.authorize(ctx, "setissuers", f"certificates/issuers/{name}")
        if name.lower() in RESERVED_ISSUERS:
            raise BadParameter(f"issuer name {name!r} is reserved")
        provider_key = self.providers.canonical(provider)
        issuer = self._load(issuer_id(name), Issuer) or Issuer.register(ctx, name)
        credential_ref = issuer.credential_ref
        writes: tuple[CustodyRow, ...] = ()
        if password is not None:
            sealed = self.custody.seal(f"issuer:{name.lower()}", password.encode())
            credential_ref, writes = sealed.ref, sealed.writes
        state = issuer.provider_state if issuer.provider == provider_key else {}
        config = IssuerConfig(
            name=issuer.name,
            provider=provider_key,
            account_id=account_id,
            password=password,
            org_id=org_id,
            admin_contacts=admin_contacts or [],
            state=state,
            params=dict(provider_params or {}),
        )
        setup = self.providers.get(provider_key).setup(config)
        issuer.configure(
            ctx,
            provider=provider_key,
            account_id=account_id,
            credential_ref=credential_ref,
            org_id=org_id,
            admin_contacts=admin_contacts or [],
            enabled=enabled,
            provider_state=setup.state,
        )
        self.commit(issuer, custody=writes + setup.custody_writes)
        return issuer

    def issuer(self, ctx: Ctx, name: str) -> Issuer:
        self.authorize(ctx, "getissuers", f"certificates/issuers/{name}")
        check_name(name, "issuer")
        issuer = self._load(issuer_id(name), Issuer)
        if issuer is None or issuer.deleted:
            raise IssuerNotFound(f"issuer {name!r} not found")
        return issuer

    @retried
    def delete_issuer(self, ctx: Ctx, name: str) -> Issuer:
        self.authorize(ctx, "deleteissuers", f"certificates/issuers/{name}")
        issuer = self.issuer(ctx, name)
        issuer.delete(ctx)
        self.commit(issuer)
        return issuer

    def issuer_config(self, issuer: Issuer) -> IssuerConfig:
        password = None
        if issuer.credential_ref:
            password = self.custody.unseal(issuer.credential_ref).decode()
        return IssuerConfig(
            name=issuer.name,
            provider=issuer.provider,
            account_id=issuer.account_id,
            password=password,
            org_id=issuer.org_id,
            admin_contacts=issuer.admin_contacts,
            state=issuer.provider_state,
        )

    # -- contacts ---------------------------------------------------------

    @retried
    def set_contacts(self, ctx: Ctx, contacts: Any) -> Contacts:
        self.authorize(ctx, "managecontacts", "certificates/contacts")
        checked = check_contacts(contacts)
        book = self._load(CONTACTS_ID, Contacts) or Contacts.start(ctx)
        book.replace(ctx, checked)
        self.commit(book)
        return book

    @retried
    def delete_contacts(self, ctx: Ctx) -> Contacts:
        self.authorize(ctx, "managecontacts", "certificates/contacts")
        book = self._load(CONTACTS_ID, Contacts)
        if book is None or not book.contacts:
            raise NotFound("no certificate contacts are set")
        book.delete(ctx)
        self.commit(book)
        return book

    # -- access -----------------------------------------------------------

    @retried
    def grant(self, ctx: Ctx, principal: str, permissions: list[str]) -> AccessControl:
        access = self.access()
        access.grant(ctx, principal, permissions)
        self.commit(access)
        return access

    @retried
    def revoke(self, ctx: Ctx, principal: str, permissions: list[str]) -> AccessControl:
        access = self.access()
        access.revoke(ctx, principal, permissions)
        self.commit(access)
        return access


def parse_policy(data: Any) -> CertificatePolicy:
    try:
        return CertificatePolicy.from_kv_json(data)
    except PolicyError as exc:
        raise BadParameter(f"invalid policy: {exc}") from exc
