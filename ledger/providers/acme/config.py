"""An ACME issuer's settings: checked from the parameters given at set-up, kept in its state."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509

from ledger.domain.errors import BadParameter

CHALLENGES = ("http-01", "dns-01")
SETTING_KEYS = (
    "directory_url",
    "email",
    "challenge",
    "http_host",
    "http_port",
    "dns_hook",
    "ca_bundle_pem",
    "wait_seconds",
)


@dataclass(frozen=True)
class AcmeSettings:
    directory_url: str
    email: str | None = None
    challenge: str = "http-01"
    http_host: str = ""
    http_port: int = 80
    dns_hook: str | None = None
    # PEM of the CAs that the ACME server's TLS certificate must chain to (None: system trust).
    ca_bundle_pem: str | None = None
    # How long one worker step keeps driving an order before leaving it pending.
    wait_seconds: float = 10.0

    def as_state(self) -> dict[str, Any]:
        return asdict(self)


def _fail(message: str) -> BadParameter:
    return BadParameter(f"ACME issuer: {message}")


def _read_ca_bundle(value: Any) -> str:
    text = str(value)
    if "-----BEGIN" not in text:
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise _fail(f"cannot read the CA bundle {value}: {exc.strerror}") from exc
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise _fail(f"the CA bundle holds no PEM certificate: {exc}") from exc
    if not certs:
        raise _fail("the CA bundle holds no PEM certificate")
    return text


def resolve_settings(state: dict[str, Any], params: dict[str, Any]) -> AcmeSettings:
    """The issuer's settings: `params` over the ones kept in `state`, checked."""
    unknown = sorted(set(params) - {*SETTING_KEYS, "ca_bundle"})
    if unknown:
        raise _fail(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_KEYS)}")
    merged = {k: state[k] for k in SETTING_KEYS if k in state}
    merged.update({k: v for k, v in params.items() if v is not None and k != "ca_bundle"})
    if params.get("ca_bundle") is not None:
        merged["ca_bundle_pem"] = params["ca_bundle"]

    url = merged.get("directory_url")
    if not url:
        raise _fail("a directory URL is required (--directory-url)")
    parsed = urlparse(str(url))
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise _fail(f"directory URL {url!r} is not an http(s) URL")
    challenge = str(merged.get("challenge") or "http-01")
    if challenge not in CHALLENGES:
        raise _fail(f"challenge {challenge!r} is not one of {', '.join(CHALLENGES)}")
    try:
        port = int(merged.get("http_port", 80))
    except (TypeError, ValueError):
        raise _fail(f"http port {merged.get('http_port')!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise _fail(f"http port {port} is outside 1..65535")
    hook = merged.get("dns_hook") or None
    if challenge == "dns-01" and not hook:
        raise _fail("the dns-01 challenge needs a hook command (--dns-hook)")
    email = merged.get("email") or None
    if email is not None and "@" not in str(email):
        raise _fail(f"contact email {email!r} has no @")
    try:
        wait = float(merged.get("wait_seconds", 10.0))
    except (TypeError, ValueError):
        raise _fail(f"wait_seconds {merged.get('wait_seconds')!r} is not a number") from None
    bundle = merged.get("ca_bundle_pem")
    return AcmeSettings(
        directory_url=str(url),
        email=str(email) if email else None,
        challenge=challenge,
        http_host=str(merged.get("http_host") or ""),
        http_port=port,
        dns_hook=str(hook) if hook else None,
        ca_bundle_pem=_read_ca_bundle(bundle) if bundle else None,
        wait_seconds=max(0.0, wait),
    )


def settings_from_state(state: dict[str, Any]) -> AcmeSettings:
    return AcmeSettings(**{k: state[k] for k in SETTING_KEYS if k in state})
