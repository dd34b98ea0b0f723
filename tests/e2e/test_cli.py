"""The CLI contract, in-process with click's runner."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ledger.cli import (
    EXIT_CONFLICT,
    EXIT_FORBIDDEN,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from tests.e2e.conftest import Run, as_json


def test_self_signed_create_wait_show_key_secret(cli: Run) -> None:
    op = as_json(
        cli(
            "-o",
            "json",
            "cert",
            "create",
            "web",
            "--issuer",
            "Self",
            "--subject",
            "CN=web.example, O=Example",
            "--san",
            "web.example",
            "--kty",
            "EC",
            "--curve",
            "P-256",
            "--validity-months",
            "6",
            "--wait",
        )
    )
    assert op["status"] == "completed"
    assert op["issuer"] == {"name": "Self"}
    assert op["target"].endswith("/certificates/web")
    bundle = as_json(cli("-o", "json", "cert", "show", "web"))
    cert = x509.load_der_x509_certificate(base64.b64decode(bundle["cer"]))
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "O=Example,CN=web.example"
    assert bundle["policy"]["key_props"]["crv"] == "P-256"
    assert bundle["policy"]["x509_props"]["validity_months"] == 6
    version = bundle["id"].rsplit("/", 1)[1]
    assert bundle["kid"].endswith(f"/keys/web/{version}")

    key = as_json(cli("-o", "json", "key", "show", "web"))
    assert key["managed"] is True
    assert key["key"]["kty"] == "EC" and key["key"]["crv"] == "P-256"

    secret = as_json(cli("-o", "json", "secret", "show", "web"))
    assert secret["contentType"] == "application/x-pkcs12"
    assert secret["managed"] is True
    pkey, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret["value"]), None)
    assert pkey is not None and leaf is not None
    assert leaf.fingerprint(leaf.signature_hash_algorithm) == cert.fingerprint(  # type: ignore[arg-type]
        cert.signature_hash_algorithm  # type: ignore[arg-type]
    )

    versions = as_json(cli("-o", "json", "cert", "versions", "web"))["value"]
    assert [v["id"] for v in versions] == [bundle["id"]]
    table = cli("cert", "versions", "web").stdout
    assert version in table and "self" in table


def test_manual_merge_through_cli(cli: Run, tmp_path: Path) -> None:
    op = as_json(
        cli(
            "-o",
            "json",
            "cert",
            "create",
            "api",
            "--subject",
            "CN=api.example",
            "--san",
            "api.example",
            "--kty",
            "RSA",
            "--size",
            "2048",
        )
    )
    assert op["status"] == "inProgress" and op["issuer"]["name"] == "Unknown"
    assert op["csr"]
    csr_pem = cli("cert", "csr", "api").stdout
    assert csr_pem.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    (tmp_path / "api.csr").write_text(csr_pem)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=Test CA",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(tmp_path / "ca.pem"),
            "-days",
            "30",
        ],
        check=True,
        capture_output=True,
    )
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:api.example\n")
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(tmp_path / "api.csr"),
            "-CA",
            str(tmp_path / "ca.pem"),
            "-CAkey",
            str(tmp_path / "ca.key"),
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            str(tmp_path / "ext.cnf"),
            "-out",
            str(tmp_path / "api.pem"),
        ],
        check=True,
        capture_output=True,
    )
    # A certificate for another key is refused, and the operation stays pending.
    refused = cli("cert", "merge", "api", str(tmp_path / "ca.pem"), expect=EXIT_USAGE)
    assert "public key" in refused.stderr
    assert as_json(cli("-o", "json", "cert", "pending", "api"))["status"] == "inProgress"
    chain = (tmp_path / "api.pem").read_bytes() + (tmp_path / "ca.pem").read_bytes()
    (tmp_path / "chain.pem").write_bytes(chain)
    bundle = as_json(cli("-o", "json", "cert", "merge", "api", str(tmp_path / "chain.pem")))
    assert bundle["x5t"]
    assert as_json(cli("-o", "json", "cert", "pending", "api"))["status"] == "completed"


def test_issuer_object_path(cli: Run) -> None:
    issuer = as_json(cli("-o", "json", "issuer", "create", "corp", "--provider", "LocalCA"))
    assert issuer["provider"] == "localca"
    assert issuer["id"].endswith("/certificates/issuers/corp")
    op = as_json(
        cli(
            "-o",
            "json",
            "cert",
            "create",
            "site",
            "--issuer",
            "corp",
            "--subject",
            "CN=site.example",
            "--kty",
            "EC",
            "--wait",
        )
    )
    assert op["status"] == "completed"
    bundle = as_json(cli("-o", "json", "cert", "show", "site"))
    leaf = x509.load_der_x509_certificate(base64.b64decode(bundle["cer"]))
    assert leaf.issuer.rfc4514_string() == "CN=certledger corp CA"
    secret = cli("secret", "show", "site").stdout
    assert "BEGIN CERTIFICATE" in secret or secret.strip()


def test_policy_file_pem_secret_and_next_version(cli: Run, tmp_path: Path) -> None:
    policy = {
        "key_props": {"kty": "EC", "crv": "P-384"},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {"subject": "CN=pem.example", "validity_months": 3},
        "issuer": {"name": "Self"},
    }
    (tmp_path / "p.json").write_text(json.dumps(policy))
    cli("cert", "create", "pem", "--policy", str(tmp_path / "p.json"), "--wait")
    first = as_json(cli("-o", "json", "cert", "show", "pem"))
    pem = cli("secret", "show", "pem").stdout
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert serialization.load_pem_private_key(pem.encode(), None) is not None
    # A later create without a policy makes the next version from the stored one.
    cli("cert", "create", "pem", "--wait")
    second = as_json(cli("-o", "json", "cert", "show", "pem"))
    assert second["id"] != first["id"]
    assert len(as_json(cli("-o", "json", "cert", "versions", "pem"))["value"]) == 2
    old = as_json(cli("-o", "json", "cert", "show", "pem", "--version", first["id"][-32:]))
    assert old["x5t"] == first["x5t"]


def test_update_disable_makes_key_and_secret_inoperable(cli: Run) -> None:
    cli("cert", "create", "d", "--issuer", "Self", "--subject", "CN=d", "--kty", "EC", "--wait")
    bundle = as_json(cli("-o", "json", "cert", "update", "d", "--disable", "--tag", "env=prod"))
    assert bundle["attributes"]["enabled"] is False
    assert bundle["tags"] == {"env": "prod"}
    denied = cli("secret", "show", "d", expect=EXIT_FORBIDDEN)
    assert "disabled" in denied.stderr
    digest = "00" * 32
    denied = cli("key", "sign", "d", "--alg", "ES256", "--digest", digest, expect=EXIT_FORBIDDEN)
    assert "disabled" in denied.stderr
    cli("cert", "update", "d", "--enable")
    signed = as_json(cli("-o", "json", "key", "sign", "d", "--alg", "ES256", "--digest", digest))
    assert len(base64.urlsafe_b64decode(signed["value"] + "==")) == 64


def test_exit_codes_and_errors(cli: Run, tmp_path: Path) -> None:
    missing = cli("cert", "show", "nope", expect=EXIT_NOT_FOUND)
    last = missing.stderr.splitlines()[-1]
    assert last.startswith("error: ") and "nope" in last
    no_policy = cli("cert", "create", "x", "--wait", expect=EXIT_USAGE)
    assert "policy" in no_policy.stderr
    bad = cli("cert", "create", "x", "--subject", "CN=x", "--size", "1024", expect=EXIT_USAGE)
    assert "key_size" in bad.stderr
    cli("cert", "create", "m", "--subject", "CN=m")
    conflict = cli("cert", "create", "m", "--subject", "CN=m", expect=EXIT_CONFLICT)
    assert "in progress" in conflict.stderr
    (tmp_path / "bad.json").write_text("{not json")
    broken = cli("cert", "create", "y", "--policy", str(tmp_path / "bad.json"), expect=EXIT_USAGE)
    assert "not valid JSON" in broken.stderr


def test_forbidden_principal_is_recorded(cli: Run) -> None:
    denied = cli(
        "--principal", "mallory", "cert", "create", "z", "--subject", "CN=z", expect=EXIT_FORBIDDEN
    )
    assert "certificates/create" in denied.stderr
    cli("access", "grant", "mallory", "create", "get")
    cli("--principal", "mallory", "cert", "create", "z", "--subject", "CN=z")
    table = cli("access", "show").stdout
    assert "mallory" in table and "create" in table
    cli("--principal", "mallory", "access", "grant", "mallory", "purge", expect=EXIT_FORBIDDEN)


def test_import_pfx_and_delete_recover_purge(cli: Run, tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=legacy.example",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-out",
            str(tmp_path / "c.pem"),
            "-days",
            "30",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-export",
            "-inkey",
            str(tmp_path / "k.pem"),
            "-in",
            str(tmp_path / "c.pem"),
            "-passout",
            "pass:s3cret",
            "-out",
            str(tmp_path / "l.pfx"),
        ],
        check=True,
        capture_output=True,
    )
    wrong = cli(
        "cert", "import", "legacy", str(tmp_path / "l.pfx"), "--password", "nope", expect=EXIT_USAGE
    )
    assert "password" in wrong.stderr
    bundle = as_json(
        cli(
            "-o",
            "json",
            "cert",
            "import",
            "legacy",
            str(tmp_path / "l.pfx"),
            "--password",
            "s3cret",
        )
    )
    assert bundle["policy"]["x509_props"]["subject"] == "CN=legacy.example"
    deleted = as_json(cli("-o", "json", "cert", "delete", "legacy"))
    assert deleted["recoveryId"].endswith("/deletedcertificates/legacy")
    cli("cert", "show", "legacy", expect=EXIT_NOT_FOUND)
    conflict = cli(
        "cert",
        "import",
        "legacy",
        str(tmp_path / "l.pfx"),
        "--password",
        "s3cret",
        expect=EXIT_CONFLICT,
    )
    assert "recover" in conflict.stderr
    cli("cert", "recover", "legacy")
    cli("cert", "show", "legacy")
    cli("cert", "delete", "legacy")
    cli("cert", "purge", "legacy")
    cli("cert", "import", "legacy", str(tmp_path / "l.pfx"), "--password", "s3cret")


def test_help_has_examples(cli: Run) -> None:
    for args in (("cert", "create"), ("cert", "merge"), ("secret", "show"), ("issuer", "create")):
        assert "Example" in cli(*args, "--help").stdout


def test_access_denials_are_listed(cli: Run) -> None:
    cli("--principal", "eve", "cert", "show", "x", expect=EXIT_FORBIDDEN)
    denied = as_json(cli("-o", "json", "access", "denied"))["value"]
    assert denied[0]["principal"] == "eve"
    assert denied[0]["permission"] == "get"
    assert denied[0]["target"] == "certificates/x"


def _all_commands() -> list[tuple[str, ...]]:
    import click

    from ledger.cli import main

    found: list[tuple[str, ...]] = []
    ctx = click.Context(main)

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                walk(command, (*path, name))
            else:
                found.append((*path, name))

    walk(main, ())
    return found


def test_every_command_has_help_with_an_example(cli: Run) -> None:
    commands = _all_commands()
    assert len(commands) > 40
    missing = [" ".join(c) for c in commands if "Example" not in cli(*c, "--help").stdout]
    assert missing == []


def test_contacts_completion_and_projection_status(cli: Run) -> None:
    shown = as_json(cli("-o", "json", "contacts", "set", "ops@example.com", "Alice=a@example.com"))
    assert shown["contacts"] == [
        {"email": "ops@example.com"},
        {"email": "a@example.com", "name": "Alice"},
    ]
    assert as_json(cli("-o", "json", "contacts", "show")) == shown
    cli("contacts", "set", "not-an-email", expect=EXIT_USAGE)
    cli("contacts", "delete")
    cli("contacts", "show", expect=EXIT_NOT_FOUND)
    script = cli("completion", "bash").stdout
    assert "_CERTLEDGER_COMPLETE" in script
    status = as_json(cli("-o", "json", "projections", "status"))["value"]
    assert {row["view"] for row in status} >= {"current", "versions", "inventory", "access"}
    assert {row["lag"] for row in status} == {0}
    csv_rows = cli("-o", "csv", "projections", "status").stdout.splitlines()
    assert csv_rows[0] == "view,position,head,lag"
