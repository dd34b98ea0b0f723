"""HTTPS benchmark: certledger's Key Vault API beside Debian's `cfssl serve`, in one run.

Issuance: EC P-256 certificates signed by a CA, with C concurrent clients (keep-alive):
  certledger: POST create (202) -> GET pending until completed -> GET the certificate
  cfssl:      POST /api/v1/cfssl/newcert (key, CSR and signature in one request)
Reads: GET /certificates/{name} on certledger beside POST /api/v1/cfssl/info (the CA
certificate) on cfssl, the nearest read it serves.
Ceiling: the same three issuance requests answered by uvicorn from canned bodies
(`http_ceiling.py`, in one and two processes), the most this HTTP stack serves here; and
certledger's own CPU per certificate through its Python API without HTTP, the most its
work allows per core.

    python scripts/bench_http.py [--certs 400] [--reads 2000] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTLEDGER = str(Path(sys.executable).with_name("certledger"))
API = "api-version=7.5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """One keep-alive HTTPS connection."""

    def __init__(self, port: int, context: ssl.SSLContext, token: str | None = None) -> None:
        self.conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def run_clients(clients: list[Client], total: int, job: Callable[[Client, int], None]) -> float:
    """Run `total` jobs over the clients, one thread each; returns the elapsed seconds."""
    counter = iter(range(total))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop(client: Client) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                job(client, i)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return elapsed


# -- cfssl ---------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cfssl_pki(folder: Path) -> None:
    """A CA for cfssl to sign with, and a TLS certificate for localhost from it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("bench CA"))
        .issuer_name(_name("bench CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "ca-key.pem").write_bytes(ca_key.private_bytes(pem, traditional, plain))
    (folder / "tls.pem").write_bytes(tls.public_bytes(pem))
    (folder / "tls-key.pem").write_bytes(tls_key.private_bytes(pem, traditional, plain))
    config = {
        "signing": {"default": {"expiry": "8760h", "usages": ["digital signature", "server auth"]}}
    }
    (folder / "config.json").write_text(json.dumps(config))


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def bench_cfssl(folder: Path, clients_n: int, certs: int, reads: int) -> tuple[float, float]:
    cfssl = shutil.which("cfssl")
    if cfssl is None:
        raise SystemExit("cfssl is missing: apt-get install -y golang-cfssl")
    make_cfssl_pki(folder)
    port = free_port()
    process = subprocess.Popen(
        [
            cfssl,
            "serve",
            "-address=127.0.0.1",
            f"-port={port}",
            f"-ca={folder / 'ca.pem'}",
            f"-ca-key={folder / 'ca-key.pem'}",
            f"-config={folder / 'config.json'}",
            f"-tls-cert={folder / 'tls.pem'}",
            f"-tls-key={folder / 'tls-key.pem'}",
            "-loglevel=5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, process, "cfssl serve")
        context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        clients = [Client(port, context) for _ in range(clients_n)]

        def newcert(client: Client, i: int) -> None:
            request = {
                "request": {
                    "CN": f"bench-{i}.example",
                    "hosts": [f"bench-{i}.example"],
                    "key": {"algo": "ecdsa", "size": 256},
                }
            }
            status, body = client.call("POST", "/api/v1/cfssl/newcert", request)
            assert status == 200 and body["success"], body
            assert body["result"]["certificate"].startswith("-----BEGIN CERTIFICATE")

        def info(client: Client, i: int) -> None:
            status, body = client.call("POST", "/api/v1/cfssl/info", {})
            assert status == 200 and body["success"], body

        run_clients(clients, clients_n * 4, newcert)  # warm-up
        issued = certs / run_clients(clients, certs, newcert)
        read = reads / run_clients(clients, reads, info)
        return issued, read
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the stack's ceiling ----------------------------------------------------------


def bench_ceiling(folder: Path, clients_n: int, certs: int, workers: int) -> float:
    """Issuances/s of `http_ceiling.py` (canned answers) under uvicorn, same TLS, same clients."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(__file__).parent),
            "http_ceiling:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--ssl-keyfile",
            str(folder / "tls-key.pem"),
            "--ssl-certfile",
            str(folder / "tls.pem"),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    clients: list[Client] = []
    try:
        wait_port(port, process, "uvicorn")
        context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        clients = [Client(port, context) for _ in range(clients_n)]

        def issue(client: Client, i: int) -> None:
            name = f"bench-{i}"
            status, op = client.call("POST", f"/certificates/{name}/create?{API}", {"policy": {}})
            assert status == 202 and op["status"] == "inProgress", op
            status, op = client.call("GET", f"/certificates/{name}/pending?{API}")
            assert op["status"] == "completed", op
            status, cert = client.call("GET", f"/certificates/{name}?{API}")
            assert status == 200 and cert["cer"], cert

        run_clients(clients, clients_n * 4, issue)  # warm-up
        return certs / run_clients(clients, certs, issue)
    finally:
        for client in clients:
            client.conn.close()
        process.terminate()
        process.wait(timeout=10)


# -- certledger's own work, without HTTP -------------------------------------------


def bench_in_process(home: Path, certs: int) -> float:
    """CPU seconds per certificate of the same issuance through the Python API in one
    thread: create, the worker's LocalCA order and promotion, the views caught up, the
    certificate read from them. No HTTP, no waiting: the ledger's own work."""
    from ledger.bootstrap import open_ledger, open_views
    from ledger.domain.context import Ctx
    from ledger.domain.policy import CertificatePolicy
    from ledger.settings import Settings
    from ledger.worker import Worker

    ledger = open_ledger(Settings.resolve(home=home, database_url=None, environ={}))
    ctx = Ctx(ledger.settings.principal)
    ledger.set_issuer(ctx, "bench-ca", provider="LocalCA")
    projector, queries = open_views(ledger)
    worker = Worker(ledger)

    def issue(i: int) -> None:
        name = f"bench-{i}"
        policy = CertificatePolicy.from_kv_json(
            {
                "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
                "x509_props": {"subject": f"CN={name}.example"},
                "issuer": {"name": "bench-ca"},
            }
        )
        ledger.create_certificate(ctx, name, policy)
        worker.run_once()
        projector.catch_up()
        assert queries.certificate(name)["cer"]

    try:
        for i in range(20):  # warm-up
            issue(10**6 + i)
        start = time.process_time()
        for i in range(certs):
            issue(i)
        return (time.process_time() - start) / certs
    finally:
        projector.db.close()
        ledger.close()


# -- certledger ----------------------------------------------------------------


def bench_certledger(home: Path, clients_n: int, certs: int, reads: int) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    home.mkdir(parents=True, exist_ok=True)
    log = (home.parent / "certledger.log").open("wb")
    process = subprocess.Popen(
        [CERTLEDGER, "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    clients: list[Client] = []
    try:
        wait_port(port, process, "certledger serve")
        token = subprocess.run(
            [CERTLEDGER, "--home", str(home), "token", "issue", "--principal", "admin"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        context = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
        clients = [Client(port, context, token) for _ in range(clients_n)]
        status, _ = clients[0].call(
            "PUT", f"/certificates/issuers/bench-ca?{API}", {"provider": "LocalCA"}
        )
        assert status == 200

        def issue(client: Client, i: int) -> None:
            name = f"bench-{i}"
            policy = {
                "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
                "x509_props": {"subject": f"CN={name}.example"},
                "issuer": {"name": "bench-ca"},
            }
            status, op = client.call(
                "POST", f"/certificates/{name}/create?{API}", {"policy": policy}
            )
            assert status == 202 and op["status"] == "inProgress", op
            while op["status"] == "inProgress":
                status, op = client.call("GET", f"/certificates/{name}/pending?{API}")
                if op["status"] == "inProgress":
                    time.sleep(0.01)
            assert op["status"] == "completed", op
            status, cert = client.call("GET", f"/certificates/{name}?{API}")
            assert status == 200 and cert["cer"], cert

        def get(client: Client, i: int) -> None:
            status, cert = client.call("GET", f"/certificates/warm-{i % clients_n}?{API}")
            assert status == 200 and cert["cer"], cert

        run_clients(clients, clients_n, lambda c, i: issue(c, i + 10**6))  # warm-up
        for i in range(clients_n):  # the certificates the reads fetch
            policy = {
                "key_props": {"kty": "EC", "crv": "P-256"},
                "x509_props": {"subject": f"CN=warm-{i}"},
                "issuer": {"name": "Self"},
            }
            clients[0].call("POST", f"/certificates/warm-{i}/create?{API}", {"policy": policy})
        for i in range(clients_n):
            while (
                clients[0].call("GET", f"/certificates/warm-{i}/pending?{API}")[1]["status"]
                == "inProgress"
            ):
                time.sleep(0.01)
        issued = certs / run_clients(clients, certs, issue)
        read = reads / run_clients(clients, reads, get)
        return issued, read
    finally:
        for client in clients:
            client.conn.close()
        process.terminate()
        process.wait(timeout=30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=400)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--dir", help="Working directory (default: a temporary one).")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-http-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "cfssl").mkdir(exist_ok=True)
    cf_issue, cf_read = bench_cfssl(work / "cfssl", args.clients, args.certs, args.reads)
    ceilings = [(w, bench_ceiling(work / "cfssl", args.clients, args.certs, w)) for w in (1, 2)]
    cl_issue, cl_read = bench_certledger(work / "home", args.clients, args.certs, args.reads)
    cpu = bench_in_process(work / "in-process", args.certs)
    print(f"{args.clients} clients, HTTPS keep-alive, EC P-256 signed by a CA")
    print(f"{'':28}{'cfssl serve':>14}{'certledger':>14}{'ratio':>8}")
    for label, theirs, ours in (
        ("issuance (certificates/s)", cf_issue, cl_issue),
        ("reads (requests/s)", cf_read, cl_read),
    ):
        print(f"{label:28}{theirs:14.1f}{ours:14.1f}{ours / theirs:8.2f}")
    for workers, rate in ceilings:
        label = f"ceiling, {workers} process(es)"
        print(f"{label:28}{cf_issue:14.1f}{rate:14.1f}{rate / cf_issue:8.2f}")
    print(
        "ceiling: uvicorn answering the same three requests from canned bodies"
        " (no key, signature, event or database): the most this stack serves here"
    )
    cores = os.cpu_count() or 1
    print(
        f"certledger's own work, no HTTP (create, LocalCA order, views, read), one thread:"
        f" {cpu * 1000:.2f} ms CPU per certificate, at most {1 / cpu:,.0f} certificates/s"
        f" per core, {cores / cpu:,.0f}/s on all {cores} cores"
        f" ({cores / cpu / cf_issue:.2f}x cfssl)"
    )


if __name__ == "__main__":
    main()
