"""Real receivers for notifications: an SMTP server (aiosmtpd, with STARTTLS and a login)
and an HTTP webhook endpoint that fails the first attempts of each event."""

from __future__ import annotations

import datetime as dt
import email
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message


class _Handler:
    def __init__(self, box: SmtpServer) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.box.lock:
            self.box.mails.append(
                Mail(
                    str(envelope.mail_from),
                    [str(r) for r in envelope.rcpt_tos],
                    email.message_from_bytes(content),
                )
            )
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == self.username
            and data.password == self.password
        )
        return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS, then a login, before mail."""

    directory: Path
    username: str = "certledger"
    password: str = "s3cret-pass"
    port: int = field(default_factory=free_port)
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.cert_file, key_file = server_certificate(self.directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=_Authenticator(self.username, self.password),
            auth_require_tls=True,
            auth_exclude_mechanism=["CRAM-MD5"],
        )

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def env(self) -> dict[str, str]:
        """The CERTLEDGER_SMTP_* settings that reach this server."""
        return {
            "CERTLEDGER_SMTP_HOST": "127.0.0.1",
            "CERTLEDGER_SMTP_PORT": str(self.port),
            "CERTLEDGER_SMTP_STARTTLS": "true",
            "CERTLEDGER_SMTP_USERNAME": self.username,
            "CERTLEDGER_SMTP_PASSWORD": self.password,
            "CERTLEDGER_SMTP_CA_FILE": str(self.cert_file),
            "CERTLEDGER_SMTP_FROM": "vault@example.com",
        }

    def received(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


class WebhookReceiver:
    """Answers 503 to the first `fail_first` attempts of each CloudEvent id, then 200."""

    def __init__(self, fail_first: int = 2) -> None:
        self.fail_first = fail_first
        self.hooks: list[Hook] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    event_id = json.loads(body).get("id")
                except ValueError:
                    event_id = None
                with receiver.lock:
                    seen = sum(1 for h in receiver.hooks if h.event.get("id") == event_id)
                    code = 503 if seen < receiver.fail_first else 200
                    receiver.hooks.append(Hook(dict(self.headers.items()), body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/certledger"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Hook]:
        with self.lock:
            return list(self.hooks)

    def accepted(self) -> list[Hook]:
        return [h for h in self.received() if h.answered == 200]
