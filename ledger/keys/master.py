"""The master key that wraps every data key."""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from ledger.keys.custody import CustodyError

MASTER_KEY_BYTES = 32


def load_master_key(path: Path, env_value: str | None) -> bytes:
    """From CERTLEDGER_MASTER_KEY (base64) when set, else from `path`, created 0600 if absent."""
    return load_key(path, env_value, "CERTLEDGER_MASTER_KEY", "master key")


def load_key(path: Path, env_value: str | None, env_name: str, what: str) -> bytes:
    """A 32-byte key from `env_name` (base64) when set, else from `path`, created 0600."""
    if env_value:
        try:
            key = base64.b64decode(env_value, validate=True)
        except binascii.Error as exc:
            raise CustodyError(f"{env_name} is not valid base64") from exc
        if len(key) != MASTER_KEY_BYTES:
            raise CustodyError(
                f"{env_name} must decode to {MASTER_KEY_BYTES} bytes, not {len(key)}"
            )
        return key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(os.urandom(MASTER_KEY_BYTES)) + b"\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CustodyError(
            f"{what} file {path} is readable by others (mode {mode:o}); chmod 600 it"
        )
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except binascii.Error as exc:
        raise CustodyError(f"{what} file {path} is not valid base64") from exc
    if len(key) != MASTER_KEY_BYTES:
        raise CustodyError(f"{what} file {path} must hold {MASTER_KEY_BYTES} bytes")
    return key
