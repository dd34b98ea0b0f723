"""The composition root: settings in, a ready ledger out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ledger.application import Ledger
from ledger.clock import clock_from
from ledger.keys.custody import KeyCustody
from ledger.keys.envelope import EnvelopeCustody
from ledger.keys.master import load_master_key
from ledger.keys.pkcs11 import Pkcs11Config, Pkcs11Custody
from ledger.keys.routing import RoutingCustody
from ledger.keys.store import SqlCustodyStore
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
from ledger.providers.orderbook import SqlOrderBook
from ledger.settings import Settings
from projections.projector import Projector
from projections.queries import Queries
from projections.source import EventLog


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
    now = clock or (clock_from(settings.now) if settings.now is not None else utcnow)
    master = load_master_key(settings.master_key_file, settings.master_key_b64)
    db = settings.database.connect()  # shared by custody and the order book
    store = SqlCustodyStore(db)
    hardware: KeyCustody | None = None
    if settings.pkcs11_module is not None:
        assert settings.pkcs11_token is not None and settings.pkcs11_pin is not None
        config = Pkcs11Config(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin)
        hardware = Pkcs11Custody(config, store)  # connects on first use of an HSM key
    custody = RoutingCustody(EnvelopeCustody(store, master), hardware, store)
    factories = {
        **BUILT_IN_PROVIDERS,
        **discover_providers(),
        **load_providers(settings.extra_providers),
    }
    services = ProviderServices(custody=custody, now=now, orders=SqlOrderBook(db))
    registry = ProviderRegistry(services, factories)
    return Ledger(settings, custody, registry, clock=now, pause=pause)


def open_views(ledger: Ledger) -> tuple[Projector, Queries]:
    """The read side of `ledger`: its projector (to catch up) and queries."""
    db = ledger.settings.database.connect()
    projector = Projector(db, EventLog(db), ledger.mapper)
    return projector, Queries(db, ledger.settings.vault_url)
