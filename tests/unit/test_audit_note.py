"""C2SP signed notes and checkpoints."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.audit.note import (
    Checkpoint,
    NoteError,
    VerifierKey,
    open_checkpoint,
    open_note,
    raw_public_key,
    sign_checkpoint,
    sign_note,
)

# The example of golang.org/x/mod/sumdb/note (the reference implementation of signed notes).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def go_private_key() -> Ed25519PrivateKey:
    blob = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    assert blob[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(blob[1:])


def test_signs_byte_for_byte_like_the_reference() -> None:
    key = go_private_key()
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    verifier = VerifierKey.parse(GO_VERIFIER)
    assert verifier.encode() == GO_VERIFIER
    assert verifier == VerifierKey.for_key("PeterNeumann", raw_public_key(key.public_key()))
    assert open_note(GO_NOTE, [verifier]) == GO_TEXT


def test_an_altered_note_is_refused() -> None:
    verifier = VerifierKey.parse(GO_VERIFIER)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])
    other = VerifierKey.for_key("Other", raw_public_key(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        open_note(GO_NOTE, [other])
    with pytest.raises(NoteError):
        open_note(GO_TEXT, [verifier])  # no signature block
    with pytest.raises(NoteError, match="control character"):
        open_note(GO_NOTE.replace("answer", "ans\x07wer"), [verifier])


def test_unknown_signatures_are_ignored() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_note(GO_TEXT, "example.com/log", key)
    extra = GO_NOTE.split("\n\n")[1]  # a valid line by a key we do not trust
    both = note + extra
    verifier = VerifierKey.for_key("example.com/log", raw_public_key(key.public_key()))
    assert open_note(both, [verifier]) == GO_TEXT


@pytest.mark.parametrize(
    "bad",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong type
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
    ],
)
def test_malformed_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        VerifierKey.parse(bad)


def test_checkpoint_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    origin = "example.com/certledger/abc"
    checkpoint = Checkpoint(origin, 20852163, bytes(range(32)))
    note = sign_checkpoint(checkpoint, origin, key)
    lines = note.split("\n")
    assert lines[:4] == [origin, "20852163", base64.b64encode(bytes(range(32))).decode(), ""]
    assert lines[4].startswith("\u2014 " + origin + " ")
    signature = base64.b64decode(lines[4].rsplit(" ", 1)[1])
    verifier = VerifierKey.for_key(origin, raw_public_key(key.public_key()))
    assert int.from_bytes(signature[:4], "big") == verifier.key_id
    assert len(signature) == 4 + 64
    assert open_checkpoint(note, [verifier]) == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        "origin\n10\n",  # no root
        "origin\n010\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "origin\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "origin\n1\nAAAA\n",  # not 32 bytes
        "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # no final newline
        "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\next\n",  # empty line
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_a_checkpoint_from_another_origin_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), "mine.example/log", key)
    verifier = VerifierKey.for_key("mine.example/log", raw_public_key(key.public_key()))
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, [verifier])
