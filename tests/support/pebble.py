"""Run Debian's `pebble` ACME server (and `pebble-challtestsrv` for DNS) on free local ports.

The Debian package ships no TLS certificate for pebble's own listener, so a throwaway CA and a
`localhost` server certificate are made here; the CA's PEM is what an ACME client must trust.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(tool: str) -> str:
    path = shutil.which(tool)
    # A missing tool is a failure, never a skip: `apt-get install -y pebble` provides it.
    assert path is not None, f"{tool} is required (Debian package pebble); it is not installed"
    return path


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a localhost certificate for pebble's HTTPS listeners."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certledger test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "tls-ca.pem"
    cert_file = directory / "tls-cert.pem"
    key_file = directory / "tls-key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


@dataclass
class Pebble:
    """A running pebble; `http_port` is where its VA fetches http-01 answers."""

    directory: Path
    tls_ca_file: Path
    acme_port: int
    management_port: int
    http_port: int
    dns_port: int
    challtest_port: int
    eab_keys: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def directory_url(self) -> str:
        return f"https://localhost:{self.acme_port}/dir"

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls_ca_file))

    def roots_pem(self) -> str:
        """Pebble's current root (regenerated at every start), from its management port."""
        url = f"https://localhost:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=self._ssl(), timeout=10) as resp:
            return str(resp.read().decode())

    def intermediate_pem(self) -> str:
        url = f"https://localhost:{self.management_port}/intermediates/0"
        with urllib.request.urlopen(url, context=self._ssl(), timeout=10) as resp:
            return str(resp.read().decode())

    def set_txt(self, host: str, value: str) -> None:
        body = json.dumps({"host": host, "value": value}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.challtest_port}/set-txt", data=body, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()


def start_pebble(
    directory: Path,
    *,
    eab_keys: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Pebble:
    """Start pebble-challtestsrv (DNS) and pebble; nonces are rejected at pebble's default 5%."""
    pebble_bin = require("pebble")
    challtest_bin = require("pebble-challtestsrv")
    directory.mkdir(parents=True, exist_ok=True)
    tls_ca, cert_file, key_file = make_tls_files(directory)
    ports = [free_port() for _ in range(6)]
    while len(set(ports)) < 6:
        ports = [free_port() for _ in range(6)]
    acme_port, mgmt_port, http_port, tls_port, dns_port, challtest_port = ports
    config: dict[str, Any] = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{mgmt_port}",
            "certificate": str(cert_file),
            "privateKey": str(key_file),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys),
        }
    }
    if eab_keys:
        config["pebble"]["externalAccountMACKeys"] = eab_keys
    config_file = directory / "pebble-config.json"
    config_file.write_text(json.dumps(config, indent=2))
    server = Pebble(
        directory=directory,
        tls_ca_file=tls_ca,
        acme_port=acme_port,
        management_port=mgmt_port,
        http_port=http_port,
        dns_port=dns_port,
        challtest_port=challtest_port,
        eab_keys=dict(eab_keys or {}),
    )
    log = (directory / "challtestsrv.log").open("wb")
    challtest = subprocess.Popen(
        [
            challtest_bin,
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"127.0.0.1:{challtest_port}",
            "-defaultIPv6",
            "",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server.processes.append(challtest)
    try:
        wait_for_port(challtest_port, challtest, "pebble-challtestsrv")
        pebble_env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
        # No artificial validation sleeps; nonce rejection stays at pebble's default.
        pebble_env["PEBBLE_VA_NOSLEEP"] = "1"
        pebble_env.update(env or {})
        plog = (directory / "pebble.log").open("wb")
        proc = subprocess.Popen(
            [pebble_bin, "-config", str(config_file), "-dnsserver", f"127.0.0.1:{dns_port}"],
            stdout=plog,
            stderr=subprocess.STDOUT,
            env=pebble_env,
            cwd=directory,
        )
        server.processes.append(proc)
        wait_for_port(acme_port, proc, "pebble")
        wait_for_port(mgmt_port, proc, "pebble (management)")
    except BaseException:
        server.stop()
        raise
    return server
