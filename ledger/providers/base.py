"""The provider interface that issuer objects name.

A provider is a class registered in the ``certledger.providers`` entry point
group. It is built with the ledger's `ProviderServices` and must implement
`setup`, `place_order`, `poll` and `cancel` (see docs/providers.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol

from ledger.domain.errors import BadParameter
from ledger.keys.custody import KeyCustody
from ledger.keys.store import CustodyRow
from ledger.pki.names import CertProfile
from ledger.providers.orderbook import MemoryOrderBook, OrderBook

OrderState = Literal["pending", "issued", "failed", "cancelled"]
ENTRY_POINT_GROUP = "certledger.providers"


@dataclass(frozen=True)
class IssuerConfig:
    """What a provider sees of an issuer object."""

    name: str
    provider: str
    account_id: str | None
    password: str | None
    org_id: str | None
    admin_contacts: list[dict[str, str]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    # Provider-specific settings given when the issuer is created or replaced (setup only).
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    """One operation's order; `order_key` is what makes placing it idempotent."""

    issuer: IssuerConfig
    csr_pem: str
    profile: CertProfile
    request_id: str
    # The pending version's id: unique to the operation even if a request id is reused.
    version: str = ""

    @property
    def order_key(self) -> str:
        return order_key(self.request_id, self.version)


def order_key(request_id: str, version: str) -> str:
    """The order book's key for an operation: its request id and pending version."""
    return f"{request_id}/{version}" if version else request_id


@dataclass(frozen=True)
class OrderStatus:
    """A CA's answer: `certificates_pem` holds the leaf and its chain once issued."""

    order_ref: str
    state: OrderState
    certificates_pem: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # While pending: seconds the CA asks the worker to wait before polling again.
    retry_after: float | None = None


class ProviderError(Exception):
    """A CA's error with a Key Vault style code; `retryable` ones are tried again."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class ProviderSetup:
    """Public state to keep with the issuer, and custody rows to save with it."""

    state: dict[str, Any]
    custody_writes: tuple[CustodyRow, ...] = ()


@dataclass(frozen=True)
class ProviderServices:
    """What the ledger lends a provider: key custody, a clock and the order book."""

    custody: KeyCustody
    now: Callable[[], datetime]
    orders: OrderBook = field(default_factory=MemoryOrderBook)


class IssuerProvider(Protocol):
    def setup(self, issuer: IssuerConfig) -> ProviderSetup:
        """Prepare an issuer object (e.g. make an account key in custody)."""
        ...

    def place_order(self, request: OrderRequest) -> OrderStatus: ...

    def poll(self, issuer: IssuerConfig, order_ref: str) -> OrderStatus: ...

    def cancel(self, issuer: IssuerConfig, order_ref: str) -> None: ...


ProviderFactory = Callable[[ProviderServices], IssuerProvider]


def discover_providers() -> dict[str, ProviderFactory]:
    """Providers registered in the entry point group, by lower-cased name."""
    found: dict[str, ProviderFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name.lower()] = ep.load()
    return found


def load_providers(targets: dict[str, str]) -> dict[str, ProviderFactory]:
    """Providers given as {name: "module:attribute"} (e.g. from CERTLEDGER_PROVIDERS)."""
    found: dict[str, ProviderFactory] = {}
    for name, target in targets.items():
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            found[name.lower()] = getattr(module, attribute)
        except (ImportError, AttributeError) as exc:
            raise BadParameter(f"provider {name!r}: cannot load {target}: {exc}") from exc
    return found


class ProviderRegistry:
    def __init__(self, services: ProviderServices, factories: dict[str, ProviderFactory]) -> None:
        self._services = services
        self._factories = {k.lower(): v for k, v in factories.items()}
        self._instances: dict[str, IssuerProvider] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def canonical(self, name: str) -> str:
        if name.lower() not in self._factories:
            known = ", ".join(self.names) or "none"
            raise BadParameter(f"unknown issuer provider {name!r}; known providers: {known}")
        return name.lower()

    @property
    def services(self) -> ProviderServices:
        return self._services

    def get(self, name: str) -> IssuerProvider:
        key = self.canonical(name)
        if key not in self._instances:
            self._instances[key] = self._factories[key](self._services)
        return self._instances[key]

    def close(self) -> None:
        """Close the providers made so far (e.g. stop challenge listeners), then the book."""
        for instance in self._instances.values():
            close = getattr(instance, "close", None)
            if callable(close):
                close()
        self._instances.clear()
        self._services.orders.close()
