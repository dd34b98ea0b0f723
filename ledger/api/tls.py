"""The server's own TLS certificate, issued by the ledger through its local CA.

The issuer object `certledger-tls` (provider LocalCA) signs a certificate of the
same name for the served host names and IP addresses (always DNS localhost,
127.0.0.1 and ::1); it is renewed through the ledger when it nears expiry or the
names change. The CA certificate goes to `<home>/tls/ca.pem`
for clients to trust. The private key is handed to the TLS layer in a temporary
file, encrypted under a one-time password, and removed once loaded.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ledger.application import PEM, Ledger
from ledger.domain.certificate import Certificate
from ledger.domain.context import Ctx
from ledger.domain.errors import Conflict, IssuerNotFound, LedgerError
from ledger.domain.policy import CertificatePolicy
from ledger.worker import Worker

TLS_NAME = "certledger-tls"
RENEW_BEFORE = timedelta(days=30)
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.S)


@dataclass(frozen=True)
class ServerTls:
    ca_file: Path
    chain_pem: str  # leaf first, then the CA
    key_pem: bytes  # PKCS#8, encrypted under `password`
    password: str
    version: str

    @contextmanager
    def files(self) -> Iterator[tuple[str, str]]:
        """(certificate file, key file) in a private temporary directory, removed on exit."""
        folder = tempfile.mkdtemp(prefix="certledger-tls-")
        try:
            cert_file = os.path.join(folder, "server.pem")
            key_file = os.path.join(folder, "server.key")
            for path, data in ((cert_file, self.chain_pem.encode()), (key_file, self.key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            yield cert_file, key_file
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def tls_names(hosts: Sequence[str], listen: str = "") -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) for the server certificate: the given hosts (names or
    addresses), the listening address when it is one, then localhost, 127.0.0.1 and ::1;
    unspecified addresses (0.0.0.0, ::) are dropped."""
    names: list[str] = []
    ips: list[str] = []
    for host in (*hosts, *([listen] if _ip(listen) else []), *LOOPBACK):
        ip = _ip(host)
        if ip is None:
            if host.lower() not in names:
                names.append(host.lower())
        elif ip not in ips and not ipaddress.ip_address(ip).is_unspecified:
            ips.append(ip)
    return names, ips


def tls_policy(hosts: Sequence[str], ips: Sequence[str] = ()) -> CertificatePolicy:
    sans: dict[str, list[str]] = {"dns_names": list(hosts)}
    if ips:
        sans["ip_addresses"] = list(ips)
    return CertificatePolicy.from_kv_json(
        {
            "key_props": {"kty": "EC", "crv": "P-256", "exportable": True, "reuse_key": False},
            "secret_props": {"contentType": PEM},
            "x509_props": {
                "subject": f"CN={hosts[0]}",
                "sans": sans,
                "ekus": [SERVER_AUTH],
                "key_usage": ["digitalSignature"],
                "validity_months": 12,
            },
            "issuer": {"name": TLS_NAME},
        }
    )


def _usable(
    ledger: Ledger, cert: Certificate | None, hosts: Sequence[str], ips: Sequence[str]
) -> bool:
    if cert is None or not cert.exists or cert.current is None or cert.policy is None:
        return False
    version = cert.versions[cert.current]
    sans = cert.policy.get("x509_props", {}).get("sans", {})
    return (
        version.enabled
        and version.not_after is not None
        and version.not_after - RENEW_BEFORE > ledger.now()
        and sorted(sans.get("dns_names", [])) == sorted(h.lower() for h in hosts)
        and sorted(sans.get("ip_addresses") or []) == sorted(ips)
    )


def ensure_server_tls(
    ledger: Ledger, ctx: Ctx, hosts: Sequence[str], ips: Sequence[str] = ()
) -> ServerTls:
    """Issue (or reuse) the server certificate through the ledger; write the CA file.

    Several API processes starting together on one database may race here: the loser of
    a concurrent change tries again and finds the winner's certificate.
    """
    for attempt in range(5):
        try:
            return _ensure_server_tls(ledger, ctx, hosts, ips)
        except Conflict:
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _ensure_server_tls(
    ledger: Ledger, ctx: Ctx, hosts: Sequence[str], ips: Sequence[str]
) -> ServerTls:
    if not hosts:
        raise ValueError("at least one TLS host name is needed")
    try:
        issuer = ledger.issuer(ctx, TLS_NAME)
    except IssuerNotFound:
        issuer = ledger.set_issuer(ctx, TLS_NAME, provider="LocalCA")
    cert = ledger.find_certificate(TLS_NAME)
    if cert is not None and cert.is_deleted:
        cert = ledger.recover_certificate(ctx, TLS_NAME)
    if not _usable(ledger, cert, hosts, ips):
        created = ledger.create_certificate(ctx, TLS_NAME, tls_policy(hosts, ips))
        cert = Worker(ledger).drive(TLS_NAME, cert=created)
        if not _usable(ledger, cert, hosts, ips):
            op = cert.operation
            detail = op.error_message or op.status if op else "no operation"
            raise LedgerError(f"the server certificate could not be issued: {detail}")
    pem, version = ledger.secret_value(ctx, TLS_NAME)
    blocks = [m.group(0) for m in _BLOCK_RE.finditer(pem)]
    key_blocks = [b for b in blocks if "PRIVATE KEY" in b.splitlines()[0]]
    certs = [b for b in blocks if b.startswith("-----BEGIN CERTIFICATE-----")]
    if len(key_blocks) != 1 or not certs:
        raise LedgerError("the server certificate's secret holds no key and certificate")
    key = serialization.load_pem_private_key(key_blocks[0].encode(), password=None)
    password = secrets.token_urlsafe(24)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    ca_pem = str(issuer.provider_state["ca_cert_pem"])
    tls_dir = ledger.settings.tls_dir
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_file = tls_dir / "ca.pem"
    ca_file.write_text(ca_pem)
    return ServerTls(ca_file, "".join(certs), encrypted, password, version.version)
