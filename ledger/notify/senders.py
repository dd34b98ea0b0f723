"""Delivery: email over SMTP (optionally STARTTLS and a login), webhooks over HTTP(S)."""

from __future__ import annotations

import smtplib
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from ledger.domain.notification import Notification
from ledger.lifetime.settings import SmtpSettings
from ledger.notify.message import (
    CONTENT_TYPE,
    SIGNATURE_HEADER,
    cloud_event_body,
    email_message,
    signature,
)


class DeliveryError(Exception):
    """A delivery attempt failed; the message says why (never a credential)."""


def _tls(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class EmailSender:
    def __init__(self, smtp: SmtpSettings, source: str) -> None:
        self.smtp = smtp
        self.source = source

    def send(self, note: Notification) -> None:
        s = self.smtp
        msg = email_message(note, s.sender, self.source)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as client:
                client.ehlo()
                if s.starttls:
                    client.starttls(context=_tls(s.ca_file))
                    client.ehlo()
                if s.username is not None and s.password is not None:
                    client.login(s.username, s.password)
                refused = client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port} refused the login of {s.username!r} ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {exc.smtp_code} {text}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryError(f"SMTP {s.host}:{s.port} refused {', '.join(sorted(refused))}")


class WebhookSender:
    def __init__(
        self, secret: str, source: str, ca_file: Path | None = None, timeout: float = 10.0
    ) -> None:
        self._secret = secret
        self.source = source
        self.timeout = timeout
        self._context = _tls(ca_file)

    def send(self, note: Notification, url: str) -> None:
        body = cloud_event_body(note, self.source)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": CONTENT_TYPE,
                SIGNATURE_HEADER: signature(self._secret, body),
                "User-Agent": "certledger",
            },
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._context
            ) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{url}: {reason}") from None
