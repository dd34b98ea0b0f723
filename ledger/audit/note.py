"""C2SP signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint).

Ed25519 only. Uses `cryptography` and the standard library (the offline verifier uses it).

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    — <key name> base64(uint32 key ID || Ed25519 signature of the text above the blank line)\\n

key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]; the verifier key
that auditors keep is `<key name>+<hex key ID>+base64(0x01 || public key)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
SIGNATURE_DASH = "\u2014 "
MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")


class NoteError(ValueError):
    """A note, checkpoint or verifier key is malformed or does not verify."""


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4), or NoteError naming `what`."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    if any(ord(c) < 0x20 for c in name):
        raise NoteError(f"key name {name!r} contains a control character")
    return name


def key_id(name: str, public_key: bytes) -> int:
    """The C2SP key ID of an Ed25519 key (a 32-bit identifier, not a security check)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class VerifierKey:
    """A note verifier: key name, key ID and Ed25519 public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def for_key(cls, name: str, public_key: bytes) -> VerifierKey:
        check_key_name(name)
        if len(public_key) != 32:
            raise NoteError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
        return cls(name, key_id(name, public_key), public_key)

    def encode(self) -> str:
        blob = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is NAME+KEYID+BASE64KEY")
        name, hex_id, blob = parts
        check_key_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError(f"verifier key ID {hex_id!r} is not 8 lower-case hex digits")
        raw = b64decode(blob, "the verifier key's public key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 (type 0x01) key")
        key = cls.for_key(name, raw[1:])
        if key.key_id != int(hex_id, 16):
            raise NoteError(f"verifier key ID {hex_id} does not match its name and key")
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _check_text(text: str, what: str) -> None:
    bad = [c for c in text if ord(c) < 0x20 and c != "\n"]
    if bad:
        raise NoteError(f"{what} contains a control character ({ord(bad[0]):#04x})")


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note: `text` (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n"):
        raise NoteError("a note text ends with a newline")
    _check_text(text, "the note text")
    verifier = VerifierKey.for_key(name, raw_public_key(key.public_key()))
    signature = key.sign(text.encode())
    blob = base64.b64encode(verifier.key_id.to_bytes(4, "big") + signature).decode()
    return f"{text}\n{SIGNATURE_DASH}{name} {blob}\n"


def cosign(note: str, name: str, key: Ed25519PrivateKey) -> str:
    """The note with one more signature line, by `key`, over the same text."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("a signed note is text, a blank line, then signature lines")
    text = note[: split + 1]
    own = sign_note(text, name, key)
    return note + own[len(text) + 1 :]


def open_note(note: str, keys: Sequence[VerifierKey]) -> str:
    """The note's text, once a signature by one of `keys` verifies; else NoteError.

    Signatures by unknown keys are ignored; a known key's failing signature rejects the note.
    """
    _check_text(note, "the note")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("a signed note is text, a blank line, then signature lines")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    if not lines:
        raise NoteError("the note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    known = {(k.name, k.key_id): k for k in keys}
    verified = False
    for line in lines:
        if not line.startswith(SIGNATURE_DASH):
            raise NoteError(f"malformed signature line {line!r}")
        name, sep, blob = line[len(SIGNATURE_DASH) :].partition(" ")
        if not sep or " " in blob:
            raise NoteError(f"malformed signature line {line!r}")
        check_key_name(name)
        raw = b64decode(blob, f"the signature by {name}")
        if len(raw) < 5:
            raise NoteError(f"the signature by {name} is too short")
        key = known.get((name, int.from_bytes(raw[:4], "big")))
        if key is None:
            continue
        if not key.verify(text.encode(), raw[4:]):
            raise NoteError(f"the signature by {name} does not verify: the note was altered")
        verified = True
    if not verified:
        names = ", ".join(sorted({k.name for k in keys})) or "(none)"
        raise NoteError(f"the note carries no signature by a trusted key ({names})")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and RFC 6962 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("a checkpoint text ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("a checkpoint has an origin, a tree size and a root hash line")
        origin, size, root, *extensions = lines
        if not _DECIMAL.match(size):
            raise NoteError(f"checkpoint tree size {size!r} is not a decimal number")
        digest = b64decode(root, "the checkpoint root hash")
        if len(digest) != 32:
            raise NoteError(f"the checkpoint root hash is {len(digest)} bytes, not 32")
        return cls(origin, int(size), digest, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    return sign_note(checkpoint.text(), name, key)


def open_checkpoint(note: str, keys: Sequence[VerifierKey]) -> Checkpoint:
    """Verify a signed checkpoint and parse it; its origin must be a trusted key's name."""
    checkpoint = Checkpoint.parse(open_note(note, keys))
    if checkpoint.origin not in {k.name for k in keys}:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the log's key name")
    return checkpoint
