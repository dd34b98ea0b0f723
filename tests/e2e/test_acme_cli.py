"""The ACME issuer through the command line, against pebble."""

from __future__ import annotations

from tests.e2e.conftest import Run, as_json
from tests.support.pebble import Pebble


def test_acme_issuer_and_certificate_from_the_cli(cli: Run, pebble: Pebble) -> None:
    shown = as_json(
        cli(
            "-o",
            "json",
            "issuer",
            "create",
            "pebble",
            "--provider",
            "acme",
            "--directory-url",
            pebble.directory_url,
            "--email",
            "ops@certledger.test",
            "--challenge",
            "http-01",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "--ca-bundle",
            str(pebble.tls_ca_file),
        )
    )
    assert shown["provider"] == "acme"
    assert shown["id"].endswith("/certificates/issuers/pebble")

    op = as_json(
        cli(
            "-o",
            "json",
            "cert",
            "create",
            "web",
            "--issuer",
            "pebble",
            "--subject",
            "CN=localhost",
            "--san",
            "localhost",
            "--kty",
            "EC",
            "--wait",
        )
    )
    assert op["status"] == "completed", op
    bundle = as_json(cli("-o", "json", "cert", "show", "web"))
    assert bundle["policy"]["issuer"]["name"] == "pebble"

    bad = cli(
        "issuer",
        "create",
        "broken",
        "--provider",
        "acme",
        "--challenge",
        "dns-01",
        "--directory-url",
        pebble.directory_url,
        expect=2,
    )
    assert (
        "error: ACME issuer: the dns-01 challenge needs a hook command (--dns-hook)" in bad.stderr
    )
