"""One ACME account's connection: certbot's client with badNonce retries and no fixed sleeps."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import requests
from acme import client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from josepy import jwa
from josepy.jwk import JWK, JWKEC, JWKRSA

from ledger.providers.base import ProviderError

T = TypeVar("T")
USER_AGENT = "certledger"
NONCE_ATTEMPTS = 10
# Problems worth another try later; the others are final.
RETRYABLE = {"badNonce", "serverInternal", "rateLimited", "connection", "dns", "orderNotReady"}


def account_jwk(key: CertificateIssuerPrivateKeyTypes) -> tuple[JWK, jwa.JWASignature]:
    """A josepy JWK (and its JWS algorithm) over a custody key object: it signs in custody."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {256: jwa.ES256, 384: jwa.ES384, 521: jwa.ES512}
        return JWKEC(key=key), algs[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), jwa.RS256
    raise ProviderError("BadParameter", "an ACME account key must be RSA or EC", retryable=False)


def csr_dns_names(csr_pem: str) -> list[str]:
    """The CSR's DNS names (its SANs, else its common name), in order, without repeats."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return list(dict.fromkeys(n.lower() for n in names))


def _pascal(code: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", code))


def problem_error(problem: messages.Error, context: str) -> ProviderError:
    """A CA's problem document as a ProviderError with a Key Vault style code."""
    code = problem.code or "error"
    detail = problem.detail or problem.title or str(problem)
    return ProviderError(
        f"Acme{_pascal(code)}", f"{context}: {detail}", retryable=code in RETRYABLE
    )


@contextmanager
def acme_errors(context: str) -> Iterator[None]:
    """Turn the library's and the network's exceptions into ProviderErrors."""
    try:
        yield
    except ProviderError:
        raise
    except messages.Error as exc:
        raise problem_error(exc, context) from exc
    except requests.RequestException as exc:
        raise ProviderError(
            "AcmeUnavailable", f"{context}: cannot reach the ACME server: {exc}"
        ) from exc
    except errors.Error as exc:
        raise ProviderError("AcmeError", f"{context}: {exc or type(exc).__name__}") from exc


class AcmeSession:
    """Requests to one ACME server as one account; calls are serialised (one nonce pool)."""

    def __init__(
        self,
        directory_url: str,
        key: CertificateIssuerPrivateKeyTypes,
        *,
        verify: str | bool,
        account_url: str | None = None,
        timeout: int = 30,
    ) -> None:
        self.jwk, alg = account_jwk(key)
        self._lock = threading.RLock()
        # requests takes a CA bundle path where the library's annotation says bool.
        self.net = client.ClientNetwork(
            self.jwk, alg=alg, verify_ssl=cast(bool, verify), user_agent=USER_AGENT, timeout=timeout
        )
        with acme_errors(f"reading the ACME directory {directory_url}"):
            self.directory = self.call(client.ClientV2.get_directory, directory_url, self.net)
        self.client = client.ClientV2(self.directory, self.net)
        if account_url:
            self.use_account(account_url)

    def use_account(self, account_url: str) -> None:
        self.net.account = messages.RegistrationResource(
            body=messages.Registration(), uri=account_url
        )

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the library, retrying a rejected nonce with a fresh one."""
        with self._lock:
            for attempt in range(1, NONCE_ATTEMPTS + 1):
                try:
                    return fn(*args, **kwargs)
                except messages.Error as exc:
                    if exc.code != "badNonce" or attempt == NONCE_ATTEMPTS:
                        raise
            raise AssertionError("unreachable")

    def post_as_get(self, url: str) -> requests.Response:
        new_nonce = self.directory["newNonce"]
        return self.call(self.net.post, url, None, new_nonce_url=new_nonce)

    def new_order(self, csr_pem: str) -> tuple[str, messages.Order]:
        """Create an order for the CSR's names: one request, retried alone on a bad nonce.

        (The library's `new_order` also fetches the authorizations; retrying it whole after a
        rejected nonce on one of those would create a second order.)
        """
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
            for name in csr_dns_names(csr_pem)
        ]
        response = self.call(
            self.net.post,
            self.directory["newOrder"],
            messages.NewOrder(identifiers=identifiers),
            new_nonce_url=self.directory["newNonce"],
        )
        location = response.headers.get("Location")
        if not location:
            raise ProviderError("AcmeError", "the CA answered the order without its URL")
        return str(location), cast(messages.Order, messages.Order.from_json(response.json()))

    def order(self, url: str) -> messages.Order:
        return cast(messages.Order, messages.Order.from_json(self.post_as_get(url).json()))

    def authorization(self, url: str) -> messages.AuthorizationResource:
        body = messages.Authorization.from_json(self.post_as_get(url).json())
        return messages.AuthorizationResource(body=body, uri=url)

    def finalize(self, order: messages.Order, csr_pem: str) -> messages.Order:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        try:
            response = self.call(
                self.net.post,
                order.finalize,
                messages.CertificateRequest(csr=csr),
                new_nonce_url=self.directory["newNonce"],
            )
        except messages.Error as exc:
            if exc.code == "orderNotReady":
                return order
            raise
        return cast(messages.Order, messages.Order.from_json(response.json()))

    def download(self, url: str) -> str:
        return str(self.post_as_get(url).text)

    def account_orders(self) -> list[str] | None:
        """URLs of the account's orders (RFC 8555 section 7.1.2.1); None if not offered."""
        assert self.net.account is not None
        account = self.post_as_get(self.net.account.uri).json()
        url = account.get("orders")
        found: list[str] = []
        pages = 0
        while url and pages < 100:
            response = self.post_as_get(str(url))
            found.extend(str(u) for u in response.json().get("orders", []))
            url = response.links.get("next", {}).get("url")
            pages += 1
        return found if account.get("orders") else None
