"""`certledger cert ...`: create, merge, inspect and manage certificates."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ledger.cli import EXIT_OPERATION_FAILED, EXIT_USAGE, State
from ledger.cli.common import parse_tags, pass_state, point_in_time, read_input, read_json
from ledger.cli.output import emit, emit_rows
from ledger.domain.errors import LedgerError, PendingNotFound
from ledger.moments import PointInTime
from projections.queries import epoch

if TYPE_CHECKING:
    from ledger.domain.policy import CertificatePolicy

CONTENT_TYPES = {"pkcs12": "application/x-pkcs12", "pem": "application/x-pem-file"}


@click.group()
def cert() -> None:
    """Certificates: create, merge, import, inspect, update, delete."""


def _policy_patch(
    issuer: str | None,
    subject: str | None,
    sans: tuple[str, ...],
    kty: str | None,
    size: int | None,
    curve: str | None,
    validity: int | None,
    content_type: str | None,
) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    x509_props: dict[str, Any] = {}
    key_props: dict[str, Any] = {}
    if issuer:
        patch["issuer"] = {"name": issuer}
        patch["lifetime_actions"] = None
    if subject is not None:
        x509_props["subject"] = subject
    if sans:
        x509_props["sans"] = {
            "dns_names": [s for s in sans if "@" not in s],
            "emails": [s for s in sans if "@" in s],
        }
    if validity is not None:
        x509_props["validity_months"] = validity
    if kty:
        key_props.update(kty=kty, key_size=size, crv=curve)
        if kty.endswith("-HSM"):
            key_props["exportable"] = False  # HSM keys never leave the HSM
    else:
        if size is not None:
            key_props["key_size"] = size
        if curve is not None:
            key_props["crv"] = curve
    if content_type:
        patch["secret_props"] = {"contentType": CONTENT_TYPES[content_type]}
    if x509_props:
        patch["x509_props"] = x509_props
    if key_props:
        patch["key_props"] = key_props
    return patch


def _resolve_policy(
    state: State, name: str, policy_file: str | None, patch: dict[str, Any], opts: dict[str, Any]
) -> CertificatePolicy | None:
    """The policy a create carries: a file, flags over the file or the stored policy, or none."""
    from ledger.domain.policy import CertificatePolicy, policy_from_options

    base: CertificatePolicy | None = None
    if policy_file:
        base = CertificatePolicy.from_kv_json(read_json(policy_file, "policy file"))
    if not patch:
        return base
    if base is None:
        existing = state.ledger.find_certificate(name)
        if existing is not None and existing.exists and existing.policy is not None:
            base = CertificatePolicy.from_kv_json(existing.policy)
    if base is None:
        return policy_from_options(**opts)
    return base.merged(patch)


@cert.command("create")
@click.argument("name")
@click.option("--policy", "policy_file", metavar="FILE.json", help="Key Vault policy JSON.")
@click.option("--issuer", help='Issuer: "Self", "Unknown" (default, manual merge) or an issuer.')
@click.option("--subject", help='Subject DN, e.g. "CN=web.example, O=Example".')
@click.option("--san", "sans", multiple=True, help="DNS name or email SAN (repeatable).")
@click.option("--kty", type=click.Choice(["RSA", "EC", "RSA-HSM", "EC-HSM"]))
@click.option("--size", type=int, help="RSA key size: 2048, 3072 or 4096.")
@click.option("--curve", help="EC curve: P-256, P-384, P-521 or P-256K.")
@click.option("--validity-months", "validity", type=int)
@click.option("--content-type", type=click.Choice(sorted(CONTENT_TYPES)), help="Secret format.")
@click.option("--tag", "tags", multiple=True, metavar="K=V")
@click.option("--wait", is_flag=True, help="Run the operation in-process until it finishes.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds for --wait.")
@pass_state
def create(
    state: State,
    name: str,
    policy_file: str | None,
    issuer: str | None,
    subject: str | None,
    sans: tuple[str, ...],
    kty: str | None,
    size: int | None,
    curve: str | None,
    validity: int | None,
    content_type: str | None,
    tags: tuple[str, ...],
    wait: bool,
    timeout: float,
) -> None:
    """Create a certificate, or its next version; prints the pending operation.

    \b
    Examples:
      certledger cert create web --issuer Self --subject CN=web.example --wait
      certledger cert create api --subject CN=api.example --san api.example
      certledger cert create site --policy policy.json --issuer corp-ca --wait
    """
    patch = _policy_patch(issuer, subject, sans, kty, size, curve, validity, content_type)
    opts = {
        "subject": subject,
        "sans": list(sans),
        "kty": kty,
        "size": size,
        "curve": curve,
        "validity_months": validity,
        "issuer": issuer,
        "content_type": CONTENT_TYPES[content_type] if content_type else None,
    }
    policy = _resolve_policy(state, name, policy_file, patch, opts)
    ledger = state.ledger
    result = ledger.create_certificate(state.ctx(), name, policy, tags=parse_tags(tags))
    if wait:
        from ledger.worker import Worker

        result = Worker(ledger).drive(name, timeout=timeout, cert=result)
    emit(state.queries.operation(name), state.output)
    op = result.require_operation()
    if wait and op.status not in ("completed", "inProgress"):
        click.echo(
            f"error: operation {op.status}: {op.error_message or op.status_details}", err=True
        )
        sys.exit(EXIT_OPERATION_FAILED)


@cert.command("pending")
@click.argument("name")
@pass_state
def pending(state: State, name: str) -> None:
    """Show the pending (or last finished) creation operation.

    \b
    Example:
      certledger cert pending web --output json
    """
    state.authorize_read("get", f"certificates/{name}/pending")
    emit(state.queries.operation(name), state.output)


@cert.command("csr")
@click.argument("name")
@pass_state
def csr(state: State, name: str) -> None:
    """Print the pending operation's CSR as PEM.

    \b
    Example:
      certledger cert csr api > api.csr
    """
    state.authorize_read("get", f"certificates/{name}/pending")
    csr_der = state.queries.operation(name).get("csr")
    if not csr_der:
        raise PendingNotFound(f"certificate {name!r} has no CSR yet")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    request = x509.load_der_x509_csr(base64.b64decode(csr_der))
    click.echo(request.public_bytes(serialization.Encoding.PEM).decode(), nl=False)


@cert.command("merge")
@click.argument("name")
@click.argument("file")
@pass_state
def merge(state: State, name: str, file: str) -> None:
    """Merge the CA-signed certificate (PEM, DER or base64 DER, chain optional).

    \b
    Example:
      certledger cert merge api signed.pem
    """
    state.ledger.merge_certificate(state.ctx(), name, read_input(file))
    emit(state.queries.certificate(name), state.output)


@cert.command("cancel")
@click.argument("name")
@pass_state
def cancel(state: State, name: str) -> None:
    """Ask for the pending operation to be cancelled (honoured at its next step).

    \b
    Example:
      certledger cert cancel site
    """
    state.ledger.cancel_operation(state.ctx(), name)
    emit(state.queries.operation(name), state.output)


@cert.command("delete-operation")
@click.argument("name")
@pass_state
def delete_operation(state: State, name: str) -> None:
    """Delete the pending operation (cancelling it if still in progress).

    \b
    Example:
      certledger cert delete-operation api
    """
    state.ledger.delete_operation(state.ctx(), name)
    click.echo(f"deleted the operation of {name}", err=True)


@cert.command("show")
@click.argument("name")
@click.option("--version", "version", help="A version id (default: the current version).")
@point_in_time
@pass_state
def show(state: State, name: str, version: str | None, at: PointInTime) -> None:
    """Show a certificate version as Key Vault's CertificateBundle.

    \b
    Examples:
      certledger cert show web --output json
      certledger cert show web --as-of 2026-01-31T12:00:00Z
    """
    state.authorize_read("get", f"certificates/{name}")
    emit(state.queries_at(name, at).certificate(name, version), state.output)


@cert.command("versions")
@click.argument("name")
@point_in_time
@pass_state
def versions(state: State, name: str, at: PointInTime) -> None:
    """List a certificate's completed versions, oldest first.

    \b
    Example:
      certledger cert versions web
    """
    state.authorize_read("list", f"certificates/{name}")
    queries = state.queries_at(name, at)
    if state.output == "json":
        emit_rows(queries.versions(name), [], "json")
        return
    cert_row, rows = queries.lineage(name)
    table = [
        {
            "version": v["version"],
            "current": "*" if v["version"] == cert_row.version else "",
            "status": v["status"],
            "origin": v["origin"],
            "enabled": bool(v["enabled"]),
            "nbf": epoch(v["nbf"]),
            "exp": epoch(v["exp"]),
            "x5t": v["x5t"],
        }
        for v in rows
    ]
    columns = ["version", "current", "status", "origin", "enabled", "nbf", "exp", "x5t"]
    emit_rows(table, columns, state.output)


@cert.command("update")
@click.argument("name")
@click.option("--version", "version", help="A version id (default: the current version).")
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="Replace the tags (repeatable).")
@pass_state
def update(
    state: State, name: str, version: str | None, enabled: bool | None, tags: tuple[str, ...]
) -> None:
    """Update a version's attributes: enabled, tags.

    \b
    Example:
      certledger cert update web --disable
    """
    v = state.ledger.update_certificate(
        state.ctx(), name, version, enabled=enabled, tags=parse_tags(tags)
    )
    emit(state.queries.certificate(name, v.version), state.output)


@cert.command("import")
@click.argument("name")
@click.argument("file")
@click.option("--password", help="Password of the PFX or encrypted PEM key.")
@click.option("--policy", "policy_file", metavar="FILE.json", help="Key Vault policy JSON.")
@pass_state
def import_(
    state: State, name: str, file: str, password: str | None, policy_file: str | None
) -> None:
    """Import a PFX/PKCS#12 or PEM (key + certificate + chain) as a new version.

    \b
    Example:
      certledger cert import legacy legacy.pfx --password s3cret
    """
    from ledger.domain.policy import CertificatePolicy

    policy = None
    if policy_file:
        policy = CertificatePolicy.from_kv_json(read_json(policy_file, "policy file"))
    state.ledger.import_certificate(
        state.ctx(), name, read_input(file), password=password, policy=policy
    )
    emit(state.queries.certificate(name), state.output)


@cert.command("policy")
@click.argument("name")
@click.option("--patch", "patch_file", metavar="FILE.json", help="Partial policy to merge in.")
@pass_state
def policy(state: State, name: str, patch_file: str | None) -> None:
    """Show a certificate's policy, or update it with a partial policy (PATCH).

    \b
    Example:
      certledger cert policy web --patch validity.json
    """
    if patch_file:
        state.ledger.update_policy(state.ctx(), name, read_json(patch_file, "policy patch"))
    else:
        state.authorize_read("get", f"certificates/{name}/policy")
    emit(state.queries.policy(name), state.output)


@cert.command("delete")
@click.argument("name")
@pass_state
def delete(state: State, name: str) -> None:
    """Delete a certificate (recoverable for 90 days), with its key and secret.

    \b
    Example:
      certledger cert delete web
    """
    state.ledger.delete_certificate(state.ctx(), name)
    emit(state.queries.deleted(name), state.output)


@cert.command("recover")
@click.argument("name")
@pass_state
def recover(state: State, name: str) -> None:
    """Recover a deleted certificate.

    \b
    Example:
      certledger cert recover web
    """
    state.ledger.recover_certificate(state.ctx(), name)
    emit(state.queries.certificate(name), state.output)


@cert.command("purge")
@click.argument("name")
@pass_state
def purge(state: State, name: str) -> None:
    """Purge a deleted certificate: its keys are destroyed; its history stays in the log.

    \b
    Example:
      certledger cert purge web
    """
    state.ledger.purge_certificate(state.ctx(), name)
    click.echo(f"purged {name}", err=True)


@cert.command("list")
@click.option("--subject", help="Subject contains this text (case-insensitive).")
@click.option("--san", help="Has this DNS name or email SAN.")
@click.option("--issuer", "issuer_name", help="Issuer name (Self, Unknown or an issuer).")
@click.option("--kty", type=click.Choice(["RSA", "EC", "RSA-HSM", "EC-HSM"]))
@click.option("--expires-within", type=int, metavar="DAYS", help="Expiring within DAYS.")
@click.option("--max-results", type=int, default=1000, show_default=True)
@pass_state
def list_(
    state: State,
    subject: str | None,
    san: str | None,
    issuer_name: str | None,
    kty: str | None,
    expires_within: int | None,
    max_results: int,
) -> None:
    """List current certificates, filtered by subject, SAN, issuer, key type or expiry.

    \b
    Example:
      certledger cert list --expires-within 30 --issuer corp-ca
    """
    state.authorize_read("list", "certificates")
    rows = state.queries.inventory(
        subject=subject,
        san=san,
        issuer=issuer_name,
        kty=kty,
        expires_within_days=expires_within,
        limit=max_results,
    )
    if state.output == "json":
        base = state.settings.vault_url
        emit_rows(
            [
                {
                    "id": f"{base}/certificates/{r['name']}",
                    "subject": r["subject"],
                    "issuer": r["issuer"],
                    "kty": r["kty"],
                    "exp": epoch(r["exp"]),
                    "attributes": {"enabled": r["enabled"]},
                }
                for r in rows
            ],
            [],
            "json",
        )
        return
    table = [{**r, "exp": epoch(r["exp"])} for r in rows]
    emit_rows(table, ["name", "subject", "issuer", "kty", "exp", "enabled"], state.output)


@cert.command("deleted")
@click.argument("name", required=False)
@pass_state
def deleted(state: State, name: str | None) -> None:
    """Show a deleted certificate, or list them all.

    \b
    Example:
      certledger cert deleted
    """
    state.authorize_read("list" if name is None else "get", "deletedcertificates")
    if name:
        emit(state.queries.deleted(name), state.output)
    else:
        emit_rows(state.queries.list_deleted(), ["recoveryId", "deletedDate"], state.output)


@cert.command("import-dir")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--password", help="Password of the PFX files or encrypted PEM keys.")
@pass_state
def import_dir(state: State, folder: str, password: str | None) -> None:
    """Import every .pfx, .p12 and .pem file of FOLDER, each named after its file.

    \b
    Example:
      certledger cert import-dir ./exported --password s3cret
    """
    files = sorted(
        p for p in Path(folder).iterdir() if p.suffix.lower() in (".pfx", ".p12", ".pem")
    )
    failures: list[str] = []

    def one(path: Path) -> None:
        name = re.sub(r"[^0-9A-Za-z-]+", "-", path.stem).strip("-")[:127] or "imported"
        try:
            state.ledger.import_certificate(state.ctx(), name, path.read_bytes(), password=password)
        except LedgerError as exc:
            failures.append(f"{path.name}: {exc}")

    if sys.stderr.isatty():
        with click.progressbar(files, label="importing", file=sys.stderr) as bar:
            for path in bar:
                one(path)
    else:
        for path in files:
            one(path)
    for failure in failures:
        click.echo(f"error: {failure}", err=True)
    click.echo(f"imported {len(files) - len(failures)} of {len(files)} file(s)", err=True)
    if failures:
        sys.exit(EXIT_USAGE)


COMMANDS = [cert]
