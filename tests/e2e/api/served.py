"""A real `certledger serve` subprocess on a free port, and credentials for the Azure SDK."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

CERTLEDGER = str(Path(sys.executable).with_name("certledger"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTLEDGER_")}
    env.update(extra)
    return env


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """`certledger --home HOME ARGS`; fails the test unless it exits 0."""
    proc = subprocess.run(
        [CERTLEDGER, "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"certledger {' '.join(args)}: {proc.stderr}"
    return proc.stdout


class StaticCredential:
    """A TokenCredential handing out one certledger token, whatever the scope."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


class AsyncStaticCredential:
    """The async TokenCredential the `aio` clients take."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AsyncStaticCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@dataclass
class Served:
    home: Path
    port: int
    process: subprocess.Popen[str]
    env: dict[str, str]
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca(self) -> Path:
        return self.home / "tls" / "ca.pem"

    def cli(self, *args: str) -> str:
        return run_cli(self.home, *args, env=self.env)

    def token(self, principal: str = "admin", expires: str = "1h") -> str:
        return self.cli("token", "issue", "--principal", principal, "--expires", expires).strip()

    def client_options(self) -> dict[str, Any]:
        return {"verify_challenge_resource": False, "connection_verify": str(self.ca)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """Start `certledger serve` and wait until it listens (fails the test otherwise)."""
    port = free_port()
    env = env or clean_env()
    process = subprocess.Popen(
        [CERTLEDGER, "--home", str(home), "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    served = Served(home, port, process, env)
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            served.log.append(line)
            if "certledger: serving" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 90
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop()
            raise AssertionError("certledger serve did not start:\n" + "".join(served.log))
    return served
