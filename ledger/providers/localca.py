"""A certificate authority run by the ledger itself; its key is held in custody."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ledger.pki.issue import make_ca, sign_csr
from ledger.providers.base import (
    IssuerConfig,
    OrderRequest,
    OrderStatus,
    ProviderServices,
    ProviderSetup,
)


def _owner(issuer: IssuerConfig) -> str:
    return f"issuer:{issuer.name.lower()}:ca"


class LocalCaProvider:
    """Issues at once, offline: the order reference is the request's order key.

    The certificate is kept in the order book, so asking again for the same request (a worker
    restarted before it saved the order) answers with it instead of signing a second one.
    """

    #: Nothing leaves the ledger: the worker needs no lease to order from it.
    offline = True

    def __init__(self, services: ProviderServices) -> None:
        self._services = services

    def setup(self, issuer: IssuerConfig) -> ProviderSetup:
        if issuer.state.get("ca_key_id"):
            return ProviderSetup(dict(issuer.state))
        handle = self._services.custody.generate(_owner(issuer), "EC", None, "P-256")
        ca = make_ca(
            self._services.custody.signer(handle.key_id),
            f"certledger {issuer.name} CA",
            now=self._services.now(),
        )
        state = {
            "ca_key_id": handle.key_id,
            "ca_cert_pem": ca.public_bytes(serialization.Encoding.PEM).decode(),
        }
        return ProviderSetup(state, handle.writes)

    def place_order(self, request: OrderRequest) -> OrderStatus:
        book = self._services.orders
        found = book.find(request.issuer.name, request.order_key)
        if found is None:
            pem = self._sign(request)
            found = book.record(
                request.issuer.name,
                request.order_key,
                "localca",
                request.order_key,
                {"certificates_pem": pem},
            )
        ref, data = found
        return OrderStatus(order_ref=ref, state="issued", certificates_pem=data["certificates_pem"])

    def _sign(self, request: OrderRequest) -> str:
        state = request.issuer.state
        ca_cert = x509.load_pem_x509_certificate(state["ca_cert_pem"].encode())
        csr = x509.load_pem_x509_csr(request.csr_pem.encode())
        leaf = sign_csr(
            csr,
            ca_key=self._services.custody.signer(state["ca_key_id"]),
            ca_cert=ca_cert,
            profile=request.profile,
            now=self._services.now(),
        )
        return str(leaf.public_bytes(serialization.Encoding.PEM).decode() + state["ca_cert_pem"])

    def poll(self, issuer: IssuerConfig, order_ref: str) -> OrderStatus:
        data = self._services.orders.data_for(issuer.name, order_ref)
        if data is not None:
            return OrderStatus(
                order_ref=order_ref, state="issued", certificates_pem=data["certificates_pem"]
            )
        return OrderStatus(
            order_ref=order_ref,
            state="failed",
            error_code="OrderNotFound",
            error_message=f"the local CA keeps no order {order_ref!r}; it issues at once",
        )

    def cancel(self, issuer: IssuerConfig, order_ref: str) -> None:
        return None
