"""The installed `certledger` command, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path


def certledger(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("certledger")
    assert exe is not None, "the certledger console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    return subprocess.run(
        [exe, "--home", str(home), *args], capture_output=True, text=True, check=check, env=env
    )


def test_demo_walks_the_three_methods(tmp_path: Path) -> None:
    result = certledger(tmp_path / "home", "demo")
    out = result.stdout
    assert "origin=self" in out and "origin=merge" in out and "origin=provider" in out
    for event in (
        "KeyPairCreated",
        "CsrIssued",
        "IssuerOrderPlaced",
        "X509Merged",
        "VersionPromoted",
        "PolicyReplaced",
    ):
        assert event in out
    assert "new ledger at" in result.stderr
    key_file = tmp_path / "home" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_pem_secret_reads_with_openssl(tmp_path: Path) -> None:
    home = tmp_path / "home"
    op = json.loads(
        certledger(
            home,
            "-o",
            "json",
            "cert",
            "create",
            "svc",
            "--issuer",
            "Self",
            "--subject",
            "CN=svc.example",
            "--san",
            "svc.example",
            "--content-type",
            "pem",
            "--wait",
        ).stdout
    )
    assert op["status"] == "completed"
    pem = certledger(home, "secret", "show", "svc").stdout
    (tmp_path / "svc.pem").write_text(pem)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "svc.pem"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:svc.example" in text
    key_check = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "svc.pem"), "-noout"],
        capture_output=True,
        text=True,
    )
    assert key_check.returncode == 0, key_check.stderr
    missing = certledger(home, "cert", "show", "absent", check=False)
    assert missing.returncode == 3
    assert missing.stderr.strip().splitlines()[-1] == "error: certificate 'absent' not found"
