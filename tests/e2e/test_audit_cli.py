"""`certledger audit ...` end to end, and the offline bundle verifier in its own process."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.ids import certificate_id
from tests.e2e.conftest import Run


def verify_bundle(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The standalone verifier, as an auditor runs it: a separate Python process."""
    return subprocess.run(
        [sys.executable, "-m", "ledger.audit.verify_bundle", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_certificates(cli: Run, *names: str) -> None:
    for name in names:
        cli("cert", "create", name, "--issuer", "Self", "--subject", f"CN={name}.example", "--wait")


@pytest.fixture
def evidence(cli: Run, tmp_path: Path) -> tuple[Path, Path]:
    """A bundle for certificate `web` and the log's verifier key, as files."""
    make_certificates(cli, "web", "api")
    cli("cert", "update", "web", "--tag", "team=payments")
    bundle = tmp_path / "web.json"
    cli("audit", "prove", "web", "--out", str(bundle))
    vkey = tmp_path / "log.vkey"
    vkey.write_text(cli("audit", "public-key").stdout)
    return bundle, vkey


def test_a_bundle_verifies_offline(evidence: tuple[Path, Path]) -> None:
    bundle, vkey = evidence
    result = verify_bundle(bundle, "--key", vkey)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VERIFIED")
    assert "certificate 'web': versions 1 to 8" in result.stdout
    assert "AttributesUpdated" in result.stdout
    # Without a pinned key it still verifies, but says whose key it trusted.
    unpinned = verify_bundle(bundle)
    assert unpinned.returncode == 0
    assert "trusting the key in the bundle" in unpinned.stderr


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def flip_b64(text: str, bit: int) -> str:
    return base64.b64encode(flip(base64.b64decode(text), bit)).decode()


def altered(bundle: dict[str, Any], where: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(bundle))
    event = copy["events"][3]
    if where == "state":
        event["state"] = flip_b64(event["state"], 77)
    elif where == "proof":
        event["inclusion_proof"][1] = flip_b64(event["inclusion_proof"][1], 3)
    elif where == "position":
        event["position"] ^= 1
    elif where == "topic":
        event["topic"] = event["topic"] + "x"
    elif where == "root":
        lines = copy["checkpoint"].split("\n")
        lines[2] = flip_b64(lines[2], 200)
        copy["checkpoint"] = "\n".join(lines)
    elif where == "signature":
        head, _, blob = copy["checkpoint"].rstrip("\n").rpartition(" ")
        copy["checkpoint"] = f"{head} {flip_b64(blob, 100)}\n"
    elif where == "size":
        lines = copy["checkpoint"].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        copy["checkpoint"] = "\n".join(lines)
    elif where == "dropped event":
        del copy["events"][2]
    elif where == "name":
        copy["certificate"] = "api"
    return copy


@pytest.mark.parametrize(
    "where",
    ["state", "proof", "position", "topic", "root", "signature", "size", "dropped event", "name"],
)
def test_an_altered_bundle_is_refused(
    evidence: tuple[Path, Path], tmp_path: Path, where: str
) -> None:
    bundle, vkey = evidence
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(altered(json.loads(bundle.read_text()), where)))
    result = verify_bundle(bad, "--key", vkey)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("REFUSED:")


def test_one_flipped_bit_anywhere_in_the_file_is_refused(
    evidence: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, vkey = evidence
    data = bundle.read_bytes()
    # A bit in the first event's stored state, as the file holds it (base64 text).
    offset = data.index(b'"state": "') + len(b'"state": "') + 40
    bad = tmp_path / "flipped.json"
    bad.write_bytes(flip(data, offset * 8 + 1))
    assert data != bad.read_bytes()
    result = verify_bundle(bad, "--key", vkey)
    assert result.returncode == 1
    assert "REFUSED" in result.stderr


def certledger_exe() -> str:
    """The console script of this environment (beside its Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("certledger")
    exe = str(beside) if beside.exists() else shutil.which("certledger")
    assert exe is not None, "the certledger console script is not installed"
    return exe


def test_a_bundle_signed_by_another_key_is_refused(
    evidence: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, _ = evidence
    other_key = subprocess.run(
        [certledger_exe(), "--home", str(tmp_path / "other"), "audit", "public-key"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = verify_bundle(bundle, "--key", other_key.strip())
    assert result.returncode == 1
    assert "no signature by a trusted key" in result.stderr


def test_the_verifier_needs_only_cryptography_and_the_standard_library(
    evidence: tuple[Path, Path],
) -> None:
    bundle, vkey = evidence
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "from ledger.audit import verify_bundle\n"
        f"assert verify_bundle.main([{str(bundle)!r}, '--key', {str(vkey)!r}]) == 0\n"
        "top = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(top - set(sys.stdlib_module_names))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    # cryptography's own native modules aside, nothing but ledger's audit modules.
    assert loaded <= {"ledger", "cryptography", "_cffi_backend", "_openssl"}, loaded
    assert "ledger" in loaded and "cryptography" in loaded


def test_checkpoints_and_consistency_from_a_kept_checkpoint(cli: Run, tmp_path: Path) -> None:
    make_certificates(cli, "web")
    first = cli("audit", "checkpoint").stdout
    origin, size, root, blank, signature = first.rstrip("\n").split("\n")
    assert int(size) > 0 and len(base64.b64decode(root)) == 32 and blank == ""
    assert signature.startswith(f"\u2014 {origin} ")
    assert cli("audit", "export-checkpoint").stdout == first
    vkey = cli("audit", "public-key").stdout.strip()
    assert vkey.startswith(origin + "+")

    kept = tmp_path / "kept.txt"
    kept.write_text(first)
    make_certificates(cli, "api")
    consistency = tmp_path / "consistency.json"
    cli("audit", "consistency", str(kept), "--out", str(consistency))
    result = verify_bundle(consistency, "--key", vkey, "--checkpoint", kept)
    assert result.returncode == 0, result.stderr
    assert f"the log still extends your checkpoint of size {size}" in result.stdout

    # A bundle for the new certificate, proving it extends the kept checkpoint too.
    bundle = tmp_path / "api.json"
    cli("audit", "prove", "api", "--since", str(kept), "--out", str(bundle))
    result = verify_bundle(bundle, "--key", vkey, "--checkpoint", kept)
    assert result.returncode == 0, result.stderr
    # Without the consistency proof, the kept checkpoint is not vouched for.
    plain = json.loads(bundle.read_text())
    del plain["consistency"]
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    result = verify_bundle(tmp_path / "plain.json", "--key", vkey, "--checkpoint", kept)
    assert result.returncode == 1 and "no consistency proof" in result.stderr

    positions = cli("-o", "json", "audit", "prove", "--position", "0", "--position", "3")
    events = json.loads(positions.stdout)["events"]
    assert [e["position"] for e in events] == [0, 3]

    assert "verified" in cli("audit", "verify", "--against", str(kept), "--public-key", vkey).stdout


def test_a_rotated_key_and_the_old_one_verify_an_old_checkpoint(cli: Run, tmp_path: Path) -> None:
    make_certificates(cli, "web")
    kept = tmp_path / "kept.txt"
    kept.write_text(cli("audit", "checkpoint").stdout)
    old = tmp_path / "old.vkey"
    old.write_text(cli("audit", "public-key").stdout)

    rotated = cli("audit", "rotate-key")
    new = rotated.stdout.strip()
    assert new == cli("audit", "public-key").stdout.strip() != old.read_text().strip()
    assert "signed by both" in rotated.stderr
    make_certificates(cli, "api")
    cli("audit", "checkpoint")

    # The auditor's old key alone no longer covers the latest checkpoint; both keys do.
    alone = cli("audit", "verify", "--public-key", str(old), expect=7)
    assert "no signature by a trusted key" in alone.stderr
    both = ("--public-key", str(old), "--public-key", new)
    assert "verified" in cli("audit", "verify", "--against", str(kept), *both).stdout
    bundle = tmp_path / "api.json"
    cli("audit", "prove", "api", "--since", str(kept), "--out", str(bundle))
    result = verify_bundle(bundle, "--key", new, "--key", old, "--checkpoint", kept)
    assert result.returncode == 0, result.stderr
    result = verify_bundle(bundle, "--key", new, "--checkpoint", kept)
    assert result.returncode == 1 and "no signature by a trusted key" in result.stderr


def test_verify_names_the_first_bad_position(cli: Run, home: Path) -> None:
    make_certificates(cli, "web", "api")
    cli("audit", "checkpoint")
    ok = json.loads(cli("-o", "json", "audit", "verify").stdout)
    assert ok["verified"] and ok["events"] == ok["leaves"] > 0

    db = sqlite3.connect(home / "ledger.db", isolation_level=None)
    stream = certificate_id("api")
    position = db.execute(
        "SELECT position FROM audit_leaves WHERE stream = ? AND version = 5", (str(stream),)
    ).fetchone()[0]
    state = db.execute(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 5",
        (stream.hex,),
    ).fetchone()[0]
    db.execute(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 5",
        (state.replace(b'"', b"'", 1), stream.hex),
    )
    result = cli("audit", "verify", expect=7)
    assert f"TAMPERED: position {position}:" in result.stderr
    assert "certificate 'api'" in result.stderr
    report = json.loads(cli("-o", "json", "audit", "verify", expect=7).stdout)
    assert report["firstBadPosition"] == position


def test_export_before_any_checkpoint_is_not_found(cli: Run) -> None:
    result = cli("audit", "export-checkpoint", expect=3)
    assert "no checkpoint yet" in result.stderr


def test_checkpoint_every_interval(tmp_path: Path) -> None:
    exe = certledger_exe()
    home = tmp_path / "home"
    out = tmp_path / "published.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    base = [exe, "--home", str(home)]
    loop = subprocess.Popen(
        [*base, "audit", "checkpoint", "--every", "0.2", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first_size = int(out.read_text().split("\n")[1])
        subprocess.run(
            [*base, "access", "grant", "bob", "get"], check=True, env=env, capture_output=True
        )
        while time.monotonic() < deadline:
            if int(out.read_text().split("\n")[1]) > first_size:
                break
            time.sleep(0.05)
        assert int(out.read_text().split("\n")[1]) == first_size + 1
    finally:
        loop.send_signal(signal.SIGTERM)
        _, stderr = loop.communicate(timeout=20)
    assert loop.returncode == 0, stderr
    assert f"checkpoint of size {first_size + 1}" in stderr
