"""The composition root: settings in, a ready ledger out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ledger.application import Ledger
from ledger.keys.envelope import EnvelopeCustody
from ledger.keys.master import load_master_key
from ledger.keys.store import SqliteCustodyStore
from ledger.pause import Pause
from ledger.providers.base import (
    IssuerProvider,
    ProviderFactory,
    ProviderRegistry,
    ProviderServices,
    discover_providers,
    load_providers,
)
from ledger.providers.localca import LocalCaProvider
from ledger.providers.orderbook import SqliteOrderBook
from ledger.settings import Settings


def _acme(services: ProviderServices) -> IssuerProvider:
    # Imported on first use: the ACME libraries are not needed for anything else.
    from ledger.providers.acme.provider import AcmeProvider

    return AcmeProvider(services)


BUILT_IN_PROVIDERS: dict[str, ProviderFactory] = {"localca": LocalCaProvider, "acme": _acme}


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_ledger(
    settings: Settings,
    clock: Callable[[], datetime] | None = None,
    *,
    pause: Pause | None = None,
) -> Ledger:
    """Open (creating on first use) the ledger that `settings` describe.

    `pause` is called after each saved step (tests inject crashes through it).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    now = clock or utcnow
    master = load_master_key(settings.master_key_file, settings.master_key_b64)
    custody = EnvelopeCustody(SqliteCustodyStore(settings.sqlite_path), master)
    factories = {
        **BUILT_IN_PROVIDERS,
        **discover_providers(),
        **load_providers(settings.extra_providers),
    }
    services = ProviderServices(
        custody=custody, now=now, orders=SqliteOrderBook(settings.sqlite_path)
    )
    registry = ProviderRegistry(services, factories)
    return Ledger(settings, custody, registry, clock=now, pause=pause)
