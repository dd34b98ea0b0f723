"""Cross-checks of the X.509 layer against the openssl command line tool."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ledger.pki import (
    CertProfile,
    build_csr,
    generate_private_key,
    load_certificates,
    load_import,
    make_ca,
    order_chain,
    same_public_key,
    self_signed,
    sign_csr,
    to_pem,
    to_pkcs12,
)

PEM = serialization.Encoding.PEM

PROFILE = CertProfile(
    subject=[("CN", "app.example.com"), ("O", "Contoso"), ("C", "US")],
    dns_names=("app.example.com", "www.example.com"),
    emails=("ops@example.com",),
    upns=("svc@example.com",),
)


@pytest.fixture(scope="module")
def openssl_bin() -> str:
    path = shutil.which("openssl")
    # A missing openssl is a failure, never a skip.
    assert path is not None, "the openssl command line tool is required for these tests"
    return path


def run(openssl_bin: str, *args: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [openssl_bin, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"openssl {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def now() -> datetime:
    return datetime.now(UTC)


def key_pem(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return data


@pytest.mark.parametrize(("kty", "curve"), [("RSA", None), ("EC", "P-256"), ("EC", "P-384")])
def test_openssl_verifies_csr(
    openssl_bin: str, tmp_path: Path, kty: str, curve: str | None
) -> None:
    key = generate_private_key(kty, curve=curve)
    csr = build_csr(key, PROFILE)
    path = write(tmp_path / "req.pem", csr.public_bytes(PEM))
    out = run(openssl_bin, "req", "-in", path, "-verify", "-noout")
    assert "verify OK" in out
    text = run(openssl_bin, "req", "-in", path, "-noout", "-text")
    assert "DNS:app.example.com" in text and "DNS:www.example.com" in text
    assert "TLS Web Server Authentication" in text


@pytest.mark.parametrize(("kty", "curve"), [("RSA", None), ("EC", "P-256"), ("EC", "P-521")])
def test_openssl_verifies_self_signed(
    openssl_bin: str, tmp_path: Path, kty: str, curve: str | None
) -> None:
    key = generate_private_key(kty, curve=curve)
    cert = write(tmp_path / "cert.pem", self_signed(key, PROFILE, now=now()).public_bytes(PEM))
    out = run(openssl_bin, "verify", "-CAfile", cert, "-partial_chain", "-check_ss_sig", cert)
    assert out.strip().endswith("OK")


def test_openssl_verifies_local_ca_leaf(openssl_bin: str, tmp_path: Path) -> None:
    ca_key = generate_private_key("EC", curve="P-384")
    ca_cert = make_ca(ca_key, "certledger Test CA", now=now())
    leaf_key = generate_private_key("RSA")
    leaf = sign_csr(
        build_csr(leaf_key, PROFILE), ca_key=ca_key, ca_cert=ca_cert, profile=PROFILE, now=now()
    )
    ca_path = write(tmp_path / "ca.pem", ca_cert.public_bytes(PEM))
    leaf_path = write(tmp_path / "leaf.pem", leaf.public_bytes(PEM))
    out = run(openssl_bin, "verify", "-CAfile", ca_path, "-purpose", "sslserver", leaf_path)
    assert out.strip() == f"{leaf_path}: OK"
    out = run(openssl_bin, "verify", "-CAfile", ca_path, "-purpose", "sslclient", leaf_path)
    assert out.strip().endswith("OK")
    ca_text = run(openssl_bin, "x509", "-in", ca_path, "-noout", "-text")
    assert "CA:TRUE, pathlen:0" in ca_text
    assert "Certificate Sign, CRL Sign" in ca_text


def test_openssl_ca_signs_our_csr(openssl_bin: str, tmp_path: Path) -> None:
    run(
        openssl_bin,
        "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=OpenSSL Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=tmp_path,
    )  # fmt: skip
    key = generate_private_key("EC", curve="P-256")
    write(tmp_path / "req.pem", build_csr(key, PROFILE).public_bytes(PEM))
    write(
        tmp_path / "ext.cnf",
        "subjectAltName=DNS:app.example.com,DNS:www.example.com\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "basicConstraints=critical,CA:FALSE\n",
    )
    run(
        openssl_bin,
        "x509", "-req", "-in", "req.pem", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "ext.cnf", "-out", "leaf.pem",
        cwd=tmp_path,
    )  # fmt: skip
    ca_pem = (tmp_path / "ca.pem").read_bytes()
    leaf_pem = (tmp_path / "leaf.pem").read_bytes()
    certs = load_certificates(ca_pem + b"\n" + leaf_pem)
    leaf, chain = order_chain(certs, key.public_key())
    assert leaf.subject.rfc4514_string() == "C=US,O=Contoso,CN=app.example.com"
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=OpenSSL Test CA"]
    leaf.verify_directly_issued_by(chain[0])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["app.example.com", "www.example.com"]

    # The same chain as PKCS#7, PEM and DER.
    run(
        openssl_bin,
        "crl2pkcs7", "-nocrl", "-certfile", "leaf.pem", "-certfile", "ca.pem",
        "-outform", "DER", "-out", "chain.p7b",
        cwd=tmp_path,
    )  # fmt: skip
    p7 = load_certificates((tmp_path / "chain.p7b").read_bytes())
    assert order_chain(p7, key) == (leaf, chain)
    run(openssl_bin, "x509", "-in", "leaf.pem", "-outform", "DER", "-out", "leaf.der", cwd=tmp_path)
    assert load_certificates((tmp_path / "leaf.der").read_bytes()) == [leaf]

    # A PFX built by openssl (empty and real passwords) imports.
    write(tmp_path / "key.pem", key_pem(key))
    for password in ("", "Imp0rt!"):
        run(
            openssl_bin,
            "pkcs12", "-export", "-inkey", "key.pem", "-in", "leaf.pem", "-certfile", "ca.pem",
            "-passout", f"pass:{password}", "-out", "bundle.pfx",
            cwd=tmp_path,
        )  # fmt: skip
        bundle = load_import((tmp_path / "bundle.pfx").read_bytes(), password or None)
        assert bundle.cert == leaf and bundle.chain == chain
        assert same_public_key(bundle.key, key)


def test_openssl_reads_our_pfx(openssl_bin: str, tmp_path: Path) -> None:
    ca_key = generate_private_key("RSA")
    ca_cert = make_ca(ca_key, "certledger Test CA", now=now())
    key = generate_private_key("EC", curve="P-256")
    leaf = sign_csr(
        build_csr(key, PROFILE), ca_key=ca_key, ca_cert=ca_cert, profile=PROFILE, now=now()
    )
    pfx = write(tmp_path / "out.pfx", to_pkcs12(key, leaf, [ca_cert], friendly_name="app"))
    info = run(openssl_bin, "pkcs12", "-info", "-nokeys", "-passin", "pass:", "-in", pfx)
    assert "friendlyName: app" in info
    assert "subject=CN = app.example.com, O = Contoso, C = US" in info
    assert "subject=CN = certledger Test CA" in info
    dumped = run(openssl_bin, "pkcs12", "-in", pfx, "-nodes", "-passin", "pass:")
    assert "-----BEGIN PRIVATE KEY-----" in dumped
    assert load_certificates(dumped) == [leaf, ca_cert]
    write(tmp_path / "dump.pem", dumped)
    pub = run(openssl_bin, "pkey", "-in", tmp_path / "dump.pem", "-pubout")
    ours = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ours.decode() in pub

    cert_only = write(tmp_path / "public.pfx", to_pkcs12(None, leaf, [ca_cert]))
    dumped = run(openssl_bin, "pkcs12", "-in", cert_only, "-nodes", "-passin", "pass:")
    assert "PRIVATE KEY" not in dumped
    assert set(load_certificates(dumped)) == {leaf, ca_cert}


def test_openssl_reads_our_pem_bundle(openssl_bin: str, tmp_path: Path) -> None:
    key = generate_private_key("RSA")
    cert = self_signed(key, PROFILE, now=now())
    bundle = write(tmp_path / "bundle.pem", to_pem(key, cert, []))
    run(openssl_bin, "pkey", "-in", bundle, "-noout")
    subject = run(openssl_bin, "x509", "-in", bundle, "-noout", "-subject")
    assert "CN = app.example.com" in subject


@pytest.mark.parametrize("algorithm", ["rsa", "ec"])
def test_openssl_keys_import(openssl_bin: str, tmp_path: Path, algorithm: str) -> None:
    # Traditional (PKCS#1 / SEC1) and encrypted PKCS#8 keys written by openssl.
    if algorithm == "rsa":
        run(openssl_bin, "genrsa", "-traditional", "-out", "trad.pem", "2048", cwd=tmp_path)
        label = "-----BEGIN RSA PRIVATE KEY-----"
    else:
        run(
            openssl_bin, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "trad.pem",
            cwd=tmp_path,
        )  # fmt: skip
        label = "-----BEGIN EC PRIVATE KEY-----"
    trad = (tmp_path / "trad.pem").read_bytes()
    assert trad.decode().startswith(label)
    run(
        openssl_bin, "pkcs8", "-topk8", "-in", "trad.pem", "-out", "enc.pem",
        "-passout", "pass:Pem-Pass1", cwd=tmp_path,
    )  # fmt: skip
    enc = (tmp_path / "enc.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in enc
    key = serialization.load_pem_private_key(trad, None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    cert = self_signed(key, PROFILE, now=now())
    cert_pem = cert.public_bytes(PEM)
    assert load_import(trad + cert_pem, None).cert == cert
    imported = load_import(cert_pem + enc, "Pem-Pass1")
    assert imported.cert == cert and same_public_key(imported.key, key)


def test_openssl_text_shows_extensions(openssl_bin: str, tmp_path: Path) -> None:
    key = generate_private_key("EC", curve="P-256")
    cert = write(tmp_path / "cert.pem", self_signed(key, PROFILE, now=now()).public_bytes(PEM))
    text = run(openssl_bin, "x509", "-in", cert, "-noout", "-text")
    for expected in (
        "DNS:app.example.com",
        "DNS:www.example.com",
        "email:ops@example.com",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "Digital Signature, Key Encipherment",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "ecdsa-with-SHA256",
    ):
        assert expected in text, expected
    # OpenSSL decodes our OtherName as a Microsoft UPN.
    assert re.search(r"othername: ?UPN:+svc@example\.com", text), text
