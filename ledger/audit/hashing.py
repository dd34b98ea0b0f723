"""Leaf encoding and RFC 6962 hashing. Standard library only (the offline verifier uses it).

A leaf commits to one stored event exactly as it is stored:

    leaf data = 0x01                              encoding version
             || uint16(len(topic)) || topic       event topic (UTF-8)
             || uint16(len(stream)) || stream     originator id, canonical UUID text (UTF-8)
             || uint64(version)                   originator version
             || uint64(position)                  0-based position in the log
             || uint32(len(state)) || state       the stored state bytes, as stored

All integers are big-endian. leaf hash = SHA-256(0x00 || leaf data) and
node hash = SHA-256(0x01 || left || right), as RFC 6962 section 2.1 defines them.
(Topic and stream come first so that a verifier can reuse their encoding.)
"""

from __future__ import annotations

import hashlib
import re
import struct
from uuid import UUID

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
LEAF_ENCODING_VERSION = 1
HASH_SIZE = 32

#: MTH({}) = SHA-256() (RFC 6962 section 2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LENGTH16 = struct.Struct(">H").pack
_TAIL = struct.Struct(">QQI").pack  # version, position, len(state)
_sha256 = hashlib.sha256


class LeafEncodingError(ValueError):
    """A field does not fit the leaf encoding."""


_HEX32 = re.compile("[0-9a-f]{32}").fullmatch  # as SQLite stores ids
_CANONICAL = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def canonical_stream(originator_id: UUID | str) -> str:
    """The stream as a leaf names it: the canonical UUID text, lower case with hyphens."""
    if isinstance(originator_id, UUID):
        return str(originator_id)
    # The stored spellings, without parsing a UUID: str(UUID(id)) gives the same text.
    if _CANONICAL(originator_id):
        return originator_id
    if _HEX32(originator_id):
        s = originator_id
        return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
    try:
        return str(UUID(originator_id))
    except ValueError:
        return originator_id


def leaf_data(position: int, stream: str, version: int, topic: str, state: bytes) -> bytes:
    """The length-prefixed encoding of one stored event at `position`."""
    s = stream.encode()
    t = topic.encode()
    if len(s) > 0xFFFF or len(t) > 0xFFFF:
        raise LeafEncodingError("a stream id or topic is longer than 65535 bytes")
    if len(state) > 0xFFFFFFFF:
        raise LeafEncodingError("a stored state is longer than 4 GiB")
    if position < 0 or version < 0:
        raise LeafEncodingError("positions and versions are non-negative")
    return b"".join(
        (
            bytes([LEAF_ENCODING_VERSION]),
            _LENGTH16(len(t)),
            t,
            _LENGTH16(len(s)),
            s,
            _TAIL(version, position, len(state)),
            state,
        )
    )


def topic_prefix(topic: str) -> bytes:
    """0x00 || 0x01 || uint16(len(topic)) || topic: how every leaf hash input of `topic` starts."""
    t = topic.encode()
    return LEAF_PREFIX + bytes([LEAF_ENCODING_VERSION]) + _LENGTH16(len(t)) + t


def stream_field(stream: str) -> bytes:
    """uint16(len(stream)) || stream."""
    s = stream.encode()
    return _LENGTH16(len(s)) + s


def leaf_hash_of_data(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def event_leaf_hash(position: int, stream: str, version: int, topic: str, state: bytes) -> bytes:
    """The leaf hash of one stored event at `position`."""
    return leaf_hash_of_data(leaf_data(position, stream, version, topic, state))


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def fold_perfect(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree whose leaves (or equal-level nodes) are `hashes`."""
    level = hashes
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def root_of(leaf_hashes: list[bytes]) -> bytes:
    """MTH of a list of leaf hashes, by the recursive definition (reference implementation)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = largest_power_of_two_below(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)
