"""The ACME provider: orders from an RFC 8555 CA, answering http-01 or dns-01 challenges.

Set-up makes the account key in key custody and registers the account (with external account
binding when the issuer has an account id and password). An order is recorded in the order
book as soon as the CA creates it, keyed by the operation, so placing it again finds it. One
call drives the order as far as it goes within `wait_seconds`, polling with a short backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from acme import errors, messages

from ledger.domain.errors import BadParameter
from ledger.providers.acme.challenges import LISTENERS, ChallengeError, run_dns_hook
from ledger.providers.acme.config import AcmeSettings, resolve_settings, settings_from_state
from ledger.providers.acme.session import (
    AcmeSession,
    acme_errors,
    csr_dns_names,
    problem_error,
)
from ledger.providers.base import (
    IssuerConfig,
    OrderRequest,
    OrderStatus,
    ProviderError,
    ProviderServices,
    ProviderSetup,
)

PROVIDER = "acme"
# An order-book row whose reference starts so: the CA was (maybe) asked, no answer recorded.
INTENT = "intent:"
FIRST_DELAY = 0.005
MAX_DELAY = 0.25
PENDING_RETRY_AFTER = 1.0


def _owner(issuer: IssuerConfig) -> str:
    return f"issuer:{issuer.name.lower()}:acme"


@dataclass(frozen=True)
class _Published:
    kind: str  # "http-01" or "dns-01"
    domain: str
    token: str
    value: str
    record: str
    listener: tuple[str, int] | None


class AcmeProvider:
    """Orders certificates from an ACME CA as one account per issuer object."""

    def __init__(self, services: ProviderServices) -> None:
        self._services = services
        self._listeners = LISTENERS
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, ...], AcmeSession] = {}
        self._ca_files: dict[str, str] = {}
        # Challenge answers this process has published, by authorization URL.
        self._published: dict[str, _Published] = {}

    # -- set-up ---------------------------------------------------------------

    def setup(self, issuer: IssuerConfig) -> ProviderSetup:
        settings = resolve_settings(issuer.state, issuer.params)
        previous = settings_from_state(issuer.state) if issuer.state.get("directory_url") else None
        key_id = issuer.state.get("account_key_id")
        same_server = previous is not None and previous.directory_url == settings.directory_url
        writes: tuple[Any, ...] = ()
        if not key_id or not same_server:
            handle = self._services.custody.generate(_owner(issuer), "EC", None, "P-256")
            key_id, writes = handle.key_id, handle.writes
        try:
            session = self._open_session(settings, key_id, None)
        except ProviderError as exc:
            raise BadParameter(f"ACME issuer: {exc.message}") from exc
        account_url = self._register(session, settings, issuer)
        state = settings.as_state()
        state.update(account_key_id=key_id, account_url=account_url)
        return ProviderSetup(state, writes)

    def _register(self, session: AcmeSession, settings: AcmeSettings, issuer: IssuerConfig) -> str:
        eab = None
        if issuer.account_id and issuer.password:
            try:
                eab = messages.ExternalAccountBinding.from_data(
                    account_public_key=session.jwk.public_key(),
                    kid=issuer.account_id,
                    hmac_key=issuer.password,
                    directory=session.directory,
                )
            except Exception as exc:
                raise BadParameter(
                    "ACME issuer: the password must be the CA's base64url HMAC key "
                    "for external account binding"
                ) from exc
        elif session.client.external_account_required():
            raise BadParameter(
                f"ACME issuer: {settings.directory_url} requires external account binding; "
                "give the CA's key id as --account-id and its HMAC key as --password"
            )
        registration = messages.NewRegistration.from_data(
            email=settings.email,
            terms_of_service_agreed=True,
            external_account_binding=eab,
        )
        try:
            with acme_errors(f"registering an account at {settings.directory_url}"):
                try:
                    regr = session.call(session.client.new_account, registration)
                    return str(regr.uri)
                except errors.ConflictError as exists:
                    session.use_account(exists.location)
                    return str(exists.location)
        except ProviderError as exc:
            raise BadParameter(f"ACME issuer: {exc.message}") from exc

    # -- sessions -------------------------------------------------------------

    def _verify(self, settings: AcmeSettings) -> str | bool:
        if not settings.ca_bundle_pem:
            return True
        digest = hashlib.sha256(settings.ca_bundle_pem.encode()).hexdigest()
        with self._lock:
            path = self._ca_files.get(digest)
            if path is None:
                fd, path = tempfile.mkstemp(prefix="certledger-acme-ca-", suffix=".pem")
                with os.fdopen(fd, "w") as f:
                    f.write(settings.ca_bundle_pem)
                self._ca_files[digest] = path
        return path

    def _open_session(
        self, settings: AcmeSettings, key_id: str, account_url: str | None
    ) -> AcmeSession:
        verify = self._verify(settings)
        cache_key = (settings.directory_url, key_id, str(verify))
        with self._lock:
            session = self._sessions.get(cache_key)
        if session is None:
            key = self._services.custody.signer(key_id)
            with acme_errors(f"connecting to {settings.directory_url}"):
                session = AcmeSession(settings.directory_url, key, verify=verify)
            with self._lock:
                session = self._sessions.setdefault(cache_key, session)
        if account_url:
            session.use_account(account_url)
        return session

    def _session(self, issuer: IssuerConfig) -> tuple[AcmeSettings, AcmeSession]:
        state = issuer.state
        if not state.get("account_key_id") or not state.get("account_url"):
            raise ProviderError(
                "BadParameter",
                f"issuer {issuer.name!r} has no ACME account; create the issuer again",
                retryable=False,
            )
        settings = settings_from_state(state)
        return settings, self._open_session(
            settings, str(state["account_key_id"]), str(state["account_url"])
        )

    # -- orders ---------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderStatus:
        profile = request.profile
        if profile.emails or profile.upns:
            raise ProviderError(
                "BadParameter",
                "an ACME CA certifies DNS names only; remove the emails and UPNs from the policy",
                retryable=False,
            )
        if not profile.dns_names:
            raise ProviderError(
                "BadParameter",
                "an ACME certificate needs at least one DNS name in the policy's SANs",
                retryable=False,
            )
        book = self._services.orders
        issuer = request.issuer
        key = request.order_key
        settings, session = self._session(issuer)
        data = {"csr_pem": request.csr_pem}
        found = book.find(issuer.name, key)
        if found is not None and found[0].startswith(INTENT):
            # A worker died between asking the CA for an order and recording it.
            adopted = self._adopt(session, issuer, request)
            found = book.replace(issuer.name, key, adopted, data) if adopted else None
        if found is None:
            # The intent is saved before the CA is asked, so a crash in between is noticed.
            book.record(issuer.name, key, PROVIDER, f"{INTENT}{uuid.uuid4().hex}", data)
            with acme_errors("placing the order"):
                url, _ = session.new_order(request.csr_pem)
            found = book.replace(issuer.name, key, url, data)
        order_ref, kept = found
        return self._drive(settings, session, order_ref, str(kept["csr_pem"]))

    def _adopt(self, session: AcmeSession, issuer: IssuerConfig, request: OrderRequest) -> str:
        """The account's unrecorded live order for the same names, if the CA lists orders."""
        wanted = sorted(csr_dns_names(request.csr_pem))
        with acme_errors("looking for an unrecorded order"):
            urls = session.account_orders()
            if not urls:
                return ""  # the CA keeps no list (RFC 8555 lets it): order afresh
            known = self._services.orders.refs(issuer.name)
            for url in reversed(urls):
                if url in known:
                    continue
                order = session.order(url)
                names = sorted(str(i.value).lower() for i in order.identifiers)
                if names == wanted and order.status != messages.STATUS_INVALID:
                    return url
        return ""

    def poll(self, issuer: IssuerConfig, order_ref: str) -> OrderStatus:
        data = self._services.orders.data_for(issuer.name, order_ref)
        if data is None:
            raise ProviderError(
                "OrderNotFound",
                f"order {order_ref} is not in the order book; its CSR is unknown",
                retryable=False,
            )
        settings, session = self._session(issuer)
        return self._drive(settings, session, order_ref, str(data["csr_pem"]))

    def cancel(self, issuer: IssuerConfig, order_ref: str) -> None:
        """Deactivate the order's authorizations (RFC 8555 section 7.5.2)."""
        if order_ref.startswith(INTENT):
            return  # the CA never confirmed an order
        _, session = self._session(issuer)
        with acme_errors(f"cancelling order {order_ref}"):
            order = session.order(order_ref)
            urls = [str(u) for u in order.authorizations]
            for url in urls:
                authz = session.authorization(url)
                if authz.body.status in (messages.STATUS_PENDING, messages.STATUS_VALID):
                    session.call(session.client.deactivate_authorization, authz)
        self._withdraw(urls, issuer)

    def _drive(
        self, settings: AcmeSettings, session: AcmeSession, order_ref: str, csr_pem: str
    ) -> OrderStatus:
        """Take the order as far as it goes before `settings.wait_seconds` run out."""
        deadline = time.monotonic() + settings.wait_seconds
        delay = FIRST_DELAY
        answered: set[str] = set()
        with acme_errors(f"order {order_ref}"):
            while True:
                order = session.order(order_ref)
                status = order.status
                urls = [str(u) for u in order.authorizations]
                if status == messages.STATUS_PENDING:
                    for url in urls:
                        authz = session.authorization(url)
                        if authz.body.status == messages.STATUS_PENDING:
                            self._answer(settings, session, authz, answered)
                elif status == messages.STATUS_READY:
                    order = session.finalize(order, csr_pem)
                    delay = FIRST_DELAY
                    if order.status != messages.STATUS_VALID:
                        continue
                if order.status == messages.STATUS_VALID and order.certificate:
                    pem = session.download(str(order.certificate))
                    self._withdraw(urls, settings)
                    return OrderStatus(order_ref=order_ref, state="issued", certificates_pem=pem)
                if order.status == messages.STATUS_INVALID:
                    failure = self._failure(session, order, urls)
                    self._withdraw(urls, settings)
                    return OrderStatus(
                        order_ref=order_ref,
                        state="failed",
                        error_code=failure.code,
                        error_message=failure.message,
                    )
                if time.monotonic() + delay > deadline:
                    return OrderStatus(
                        order_ref=order_ref, state="pending", retry_after=PENDING_RETRY_AFTER
                    )
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)

    def _answer(
        self,
        settings: AcmeSettings,
        session: AcmeSession,
        authz: messages.AuthorizationResource,
        answered: set[str],
    ) -> None:
        """Publish the answer to the issuer's challenge type, then tell the CA to check it."""
        domain = str(authz.body.identifier.value)
        challb = next((c for c in authz.body.challenges if c.chall.typ == settings.challenge), None)
        if challb is None:
            raise ProviderError(
                "AcmeChallengeUnavailable",
                f"the CA offers no {settings.challenge} challenge for {domain}",
                retryable=False,
            )
        response, validation = challb.response_and_validation(session.jwk)
        url = str(authz.uri)
        if url not in self._published:
            token = str(challb.chall.encode("token"))
            record = ""
            try:
                if settings.challenge == "http-01":
                    listener = (settings.http_host, settings.http_port)
                    self._listeners.get(*listener).publish(token, str(validation))
                else:
                    listener = None
                    record = str(challb.chall.validation_domain_name(domain))
                    assert settings.dns_hook is not None
                    run_dns_hook(settings.dns_hook, "present", domain, record, str(validation))
            except ChallengeError as exc:
                raise ProviderError("AcmeChallengeSetup", str(exc)) from exc
            self._published[url] = _Published(
                settings.challenge, domain, token, str(validation), record, listener
            )
        if challb.status == messages.STATUS_PENDING and url not in answered:
            session.call(session.client.answer_challenge, challb, response)
            answered.add(url)

    def _withdraw(self, authz_urls: list[str], settings: AcmeSettings | IssuerConfig) -> None:
        hook = settings.dns_hook if isinstance(settings, AcmeSettings) else None
        if isinstance(settings, IssuerConfig):
            hook = settings.state.get("dns_hook")
        for url in authz_urls:
            published = self._published.pop(url, None)
            if published is None:
                continue
            if published.listener is not None:
                self._listeners.get(*published.listener).withdraw(published.token)
            elif hook:
                # A stale TXT record is harmless: the order is settled.
                with contextlib.suppress(ChallengeError):
                    run_dns_hook(
                        hook, "cleanup", published.domain, published.record, published.value
                    )

    def _failure(
        self, session: AcmeSession, order: messages.Order, urls: list[str]
    ) -> ProviderError:
        for url in urls:
            authz = session.authorization(url)
            for challb in authz.body.challenges:
                if challb.error is not None:
                    domain = authz.body.identifier.value
                    return problem_error(challb.error, f"the CA could not validate {domain}")
        if order.error is not None:
            return problem_error(order.error, "the CA refused the order")
        return ProviderError("AcmeOrderInvalid", "the CA marked the order invalid", retryable=False)

    def close(self) -> None:
        for published in list(self._published.values()):
            if published.listener is not None:
                self._listeners.get(*published.listener).withdraw(published.token)
        self._published.clear()
        with self._lock:
            self._sessions.clear()
            for path in self._ca_files.values():
                with contextlib.suppress(OSError):
                    os.unlink(path)
            self._ca_files.clear()
