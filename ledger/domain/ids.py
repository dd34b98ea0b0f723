"""Names and stream ids: light enough for every command to import."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.domain.errors import BadParameter

NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")


def check_name(name: str, what: str = "certificate") -> str:
    if not NAME_RE.match(name):
        raise BadParameter(
            f"{what} name {name!r} is invalid: use 1 to 127 letters, digits and hyphens"
        )
    return name


def certificate_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, "certledger:certificate:" + name.lower())


def issuer_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, "certledger:issuer:" + name.lower())
