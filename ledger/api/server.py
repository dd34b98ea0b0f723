"""`certledger serve`: the API over HTTPS, with the worker and the projection follower.

By default one process runs all three (API requests in uvicorn's thread pool, the
worker and the follower in threads); `--no-worker` and `--no-projections` leave
those to other processes, for several API processes on one PostgreSQL database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from ledger.api.app import create_app
from ledger.api.services import ApiServices
from ledger.api.tls import ensure_server_tls, tls_names
from ledger.bootstrap import open_ledger
from ledger.domain.context import Ctx
from ledger.keys.master import load_key
from ledger.settings import Settings
from ledger.tokens import TokenAuthority
from ledger.worker import Worker
from projections.projector import Projector
from projections.queries import Queries

log = logging.getLogger("certledger.serve")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    vault_url: str | None = None
    tls_hosts: Sequence[str] = ("localhost",)
    worker: bool = True
    projections: bool = True
    worker_interval: float = 0.5
    # Worker threads, each taking its share of the certificates: one waits for the disk or
    # a lock while another signs.
    worker_threads: int = 2
    pending_wait: float = 1.0


def load_tokens(settings: Settings) -> TokenAuthority:
    key = load_key(
        settings.token_key_file, settings.token_key_b64, "CERTLEDGER_TOKEN_KEY", "token key"
    )
    return TokenAuthority(key)


def _work(
    worker: Worker,
    stop: threading.Event,
    wake: threading.Event,
    interval: float,
    progressed_hook: Callable[[], None],
) -> None:
    """The worker loop, woken at once by a create or a cancel."""
    while not stop.is_set():
        wake.clear()  # before the round: a wake during it starts the next one at once
        try:
            progressed = worker.run_once()
        except Exception:  # keep serving; the next round retries
            log.exception("worker round failed")
            progressed = 0
        if progressed == 0:
            wake.wait(interval)
        else:
            progressed_hook()  # answers the GETs of operations that waited for this


def _follow(projector: Projector, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            projector.follow(stop)
        except Exception:
            log.exception("projection follower failed; restarting")
            stop.wait(1.0)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def serve(settings: Settings, options: ServeOptions, say: Callable[[str], None]) -> None:
    """Run until SIGINT or SIGTERM."""
    vault_url = (options.vault_url or f"https://localhost:{options.port}").rstrip("/")
    settings = replace(settings, vault_url=vault_url)
    ledger = open_ledger(settings)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        names, ips = tls_names(options.tls_hosts, options.host)
        tls = ensure_server_tls(ledger, Ctx(settings.principal), names, ips)
        say(f"CA certificate: {tls.ca_file}")
        db = settings.database.connect()
        projector = Projector(db, ledger.recorder, ledger.mapper)
        services = ApiServices(ledger, projector, Queries(db, vault_url))
        services.pending_wait = options.pending_wait if options.worker else 0.0
        app = create_app(services, load_tokens(settings))
        if options.worker:
            count = max(1, options.worker_threads)
            for index in range(count):
                worker = Worker(
                    ledger, shard=(index, count), lifetime=index == 0, lifetime_every=0.2
                )
                wake = threading.Event()
                services.worker_wakes.append(wake)
                args = (worker, stop, wake, options.worker_interval, services.worker_progressed)
                threads.append(threading.Thread(target=_work, args=args, name=f"worker-{index}"))
        if options.projections:  # shares the readers' projector: one writer of the views
            threads.append(threading.Thread(target=_follow, args=(projector, stop), name="views"))
        with tls.files() as (cert_file, key_file):
            config = uvicorn.Config(
                app,
                host=options.host,
                port=options.port,
                ssl_certfile=cert_file,
                ssl_keyfile=key_file,
                ssl_keyfile_password=tls.password,
                log_level="warning",
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=5,
            )
            config.load()  # reads the key; the files are removed on leaving this block
        for thread in threads:
            thread.start()
        roles = ["API"] + (["worker"] if options.worker else [])
        roles += ["projections"] if options.projections else []
        server = _Server(
            config,
            lambda: say(
                f"serving {vault_url} on {options.host}:{options.port} ({', '.join(roles)})"
            ),
        )
        server.run()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        ledger.close()
