"""Answering ACME challenges: an http-01 listener run by certledger, a dns-01 hook command."""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHALLENGE_PATH = "/.well-known/acme-challenge/"
# How long an idle listener stays up, so back-to-back orders reuse it.
IDLE_SECONDS = 2.0


class ChallengeError(Exception):
    """A challenge could not be published (port in use, hook failed)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], tokens: dict[str, str]) -> None:
        self.tokens = tokens
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        token = self.path[len(CHALLENGE_PATH) :] if self.path.startswith(CHALLENGE_PATH) else ""
        answer = self.server.tokens.get(token) if token else None
        body = (answer or "not found").encode()
        self.send_response(200 if answer else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the CA's fetches are not worth a log line each


class HttpChallengeListener:
    """A small threaded HTTP server on (host, port), up while it has tokens to answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._idle_timer: threading.Timer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def publish(self, token: str, key_authorization: str) -> None:
        with self._lock:
            self._tokens[token] = key_authorization
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if self._server is None:
                try:
                    server = _Server((self.host, self.port), self._tokens)
                except OSError as exc:
                    del self._tokens[token]
                    raise ChallengeError(
                        f"cannot listen for http-01 challenges on "
                        f"{self.host or '*'}:{self.port}: {exc.strerror or exc}"
                    ) from exc
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"acme-http-01:{self.port}",
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread

    def withdraw(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)
            if not self._tokens and self._server is not None and self._idle_timer is None:
                timer = threading.Timer(IDLE_SECONDS, self._stop_if_idle)
                timer.daemon = True
                timer.start()
                self._idle_timer = timer

    def _stop_if_idle(self) -> None:
        with self._lock:
            self._idle_timer = None
            if not self._tokens:
                self._stop()

    def _stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def close(self) -> None:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._tokens.clear()
            self._stop()


class HttpChallengeListeners:
    """One listener per (host, port), shared by every ACME issuer of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, int], HttpChallengeListener] = {}

    def get(self, host: str, port: int) -> HttpChallengeListener:
        with self._lock:
            listener = self._listeners.get((host, port))
            if listener is None:
                listener = HttpChallengeListener(host, port)
                self._listeners[(host, port)] = listener
            return listener

    def close(self) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for listener in listeners:
            listener.close()


# Ports belong to the process: every ACME provider (and ledger) of a process shares these.
LISTENERS = HttpChallengeListeners()


def run_dns_hook(command: str, action: str, domain: str, record: str, value: str) -> None:
    """Run the issuer's dns-01 hook: `sh -c COMMAND` with the record in its environment.

    CERTLEDGER_ACME_ACTION is `present` (publish the TXT record, and return once it is
    visible) or `cleanup`; CERTLEDGER_ACME_DOMAIN is the domain being validated,
    CERTLEDGER_ACME_RECORD the record name (`_acme-challenge.<domain>`) and CERTLEDGER_ACME_TXT
    the TXT value. The arguments are also given as $1 (action), $2 (domain), $3 (value).
    """
    env = dict(os.environ)
    env.update(
        {
            "CERTLEDGER_ACME_ACTION": action,
            "CERTLEDGER_ACME_DOMAIN": domain,
            "CERTLEDGER_ACME_RECORD": record,
            "CERTLEDGER_ACME_TXT": value,
        }
    )
    try:
        proc = subprocess.run(
            ["sh", "-c", command, "certledger-dns-hook", action, domain, value],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChallengeError(f"the dns-01 hook could not run ({action} {domain}): {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise ChallengeError(
            f"the dns-01 hook failed ({action} {domain}, exit status {proc.returncode}): "
            f"{detail[0]}"
        )
