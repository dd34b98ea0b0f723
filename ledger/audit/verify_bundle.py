"""Check a certledger evidence bundle offline: no ledger, no database, no network.

    python -m ledger.audit.verify_bundle bundle.json [--key VKEY] [--checkpoint KEPT]

Checks the checkpoint's Ed25519 signature (C2SP signed note), recomputes each event's
leaf from its stored bytes, checks its inclusion proof against the checkpoint's root
(RFC 9162), and, when the bundle carries one, the consistency proof from an earlier
checkpoint. `--key` is the log's verifier key as you keep it (text or a file; repeat it
with the keys before and after a rotation); without it the keys in the bundle are used,
and said so. `--checkpoint` is a checkpoint you kept
earlier: the bundle must prove the log still extends it.

Needs only the standard library and `cryptography` (see `ledger/audit/hashing.py`,
`proofs.py` and `note.py`, which it imports). Exit status 0: verified; 1: refused.
"""

from __future__ import annotations

import argparse
import binascii
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ledger.audit.hashing import HASH_SIZE, event_leaf_hash
from ledger.audit.note import Checkpoint, NoteError, VerifierKey, b64decode, open_checkpoint
from ledger.audit.proofs import ProofError, verify_consistency, verify_inclusion

FORMAT = "certledger-evidence/v1"


class Refused(Exception):
    """The bundle does not prove what it claims."""


def _field(obj: dict[str, Any], name: str, kind: type, where: str = "the bundle") -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise Refused(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    return value


def _hashes(values: Any, where: str) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise Refused(f"{where}: a proof is a list of base64 hashes")
    hashes = [b64decode(v, where) for v in values]
    if any(len(h) != HASH_SIZE for h in hashes):
        raise Refused(f"{where}: every proof hash is {HASH_SIZE} bytes")
    return hashes


def certificate_stream(name: str) -> str:
    """The stream id certledger gives a certificate name."""
    return str(uuid5(NAMESPACE_URL, "certledger:certificate:" + name.lower()))


def verify(
    bundle: Any,
    key: VerifierKey | Sequence[VerifierKey] | None = None,
    kept: str | None = None,
) -> tuple[Checkpoint, list[str]]:
    """Verify a parsed bundle; return its checkpoint and lines describing what was proved.

    `key` is the verifier key to trust, or several (the keys before and after a rotation).
    Without it, the bundle's own keys are used (they prove integrity, not who signed).
    """
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise Refused(f"not a certledger evidence bundle (format {FORMAT})")
    lines: list[str] = []
    if key is None:
        retired = bundle.get("retired_keys", [])
        if not isinstance(retired, list) or not all(isinstance(k, str) for k in retired):
            raise Refused("retired_keys is not a list of verifier keys")
        keys = [VerifierKey.parse(k) for k in (_field(bundle, "public_key", str), *retired)]
    else:
        keys = [key] if isinstance(key, VerifierKey) else list(key)
    checkpoint = open_checkpoint(_field(bundle, "checkpoint", str), keys)
    lines.append(
        f"checkpoint: {checkpoint.origin} size {checkpoint.size} "
        f"root {checkpoint.root.hex()} (signature verified)"
    )
    kind = _field(bundle, "kind", str)
    if kind not in ("certificate", "events", "consistency"):
        raise Refused(f"unknown bundle kind {kind!r}")
    if kind != "consistency":
        lines += _verify_events(bundle, kind, checkpoint)
    older = _verify_consistency(bundle, keys, checkpoint)
    if older is not None:
        lines.append(f"consistent with the checkpoint of size {older.size}")
    if kept is not None:
        mine = open_checkpoint(kept, keys)
        if mine.size == checkpoint.size:
            if mine.root != checkpoint.root:
                raise Refused(f"your checkpoint and the bundle's differ at size {mine.size}")
        elif older is None or (older.size, older.root) != (mine.size, mine.root):
            raise Refused(
                f"the bundle carries no consistency proof from your checkpoint "
                f"(size {mine.size}); ask for one with `certledger audit prove --since`"
            )
        lines.append(f"the log still extends your checkpoint of size {mine.size}")
    return checkpoint, lines


def _verify_events(bundle: dict[str, Any], kind: str, checkpoint: Checkpoint) -> list[str]:
    events = _field(bundle, "events", list)
    if not events:
        raise Refused("the bundle proves no events")
    lines = []
    previous: tuple[int, int] | None = None
    for i, item in enumerate(events):
        where = f"event {i}"
        if not isinstance(item, dict):
            raise Refused(f"{where} is not an object")
        position = _field(item, "position", int, where)
        stream = _field(item, "stream", str, where)
        version = _field(item, "version", int, where)
        topic = _field(item, "topic", str, where)
        state = b64decode(_field(item, "state", str, where), f"{where}: state")
        proof = _hashes(item.get("inclusion_proof"), f"{where}: inclusion_proof")
        leaf = event_leaf_hash(position, stream, version, topic, state)
        try:
            verify_inclusion(position, checkpoint.size, leaf, proof, checkpoint.root)
        except ProofError as exc:
            raise Refused(f"{where} (position {position}, version {version}): {exc}") from exc
        if kind == "certificate":
            if stream != bundle.get("stream"):
                raise Refused(f"{where} belongs to another stream ({stream})")
            if previous is not None and (version, position) <= previous:
                raise Refused(f"{where}: events must be in version and position order")
            if version != i + 1:
                raise Refused(f"{where}: version {version} where {i + 1} was expected")
            previous = (version, position)
        lines.append(f"  position {position}: v{version} {topic.rpartition('.')[2]}")
    if kind == "certificate":
        name = _field(bundle, "certificate", str)
        if bundle.get("stream") != certificate_stream(name):
            raise Refused(f"stream {bundle.get('stream')} is not certificate {name!r}'s")
        lines.insert(
            0,
            f"certificate {name!r}: versions 1 to {len(events)} of its stream are in the log",
        )
    else:
        lines.insert(0, f"{len(events)} event(s) are in the log")
    return lines


def _verify_consistency(
    bundle: dict[str, Any], keys: list[VerifierKey], checkpoint: Checkpoint
) -> Checkpoint | None:
    section = bundle.get("consistency")
    if section is None:
        if bundle.get("kind") == "consistency":
            raise Refused("a consistency bundle without its proof")
        return None
    if not isinstance(section, dict):
        raise Refused("the consistency section is not an object")
    older = open_checkpoint(_field(section, "from", str, "consistency"), keys)
    proof = _hashes(section.get("proof"), "consistency: proof")
    try:
        if older.size:
            verify_consistency(older.size, checkpoint.size, proof, older.root, checkpoint.root)
    except ProofError as exc:
        raise Refused(f"consistency from size {older.size}: {exc}") from exc
    return older


def _text_or_file(value: str) -> str:
    path = Path(value)
    return path.read_text() if path.is_file() else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.audit.verify_bundle",
        description="Verify a certledger evidence bundle offline.",
    )
    parser.add_argument("bundle", help="the bundle JSON file ('-' for standard input)")
    parser.add_argument(
        "--key",
        action="append",
        help="the log's verifier key (NAME+ID+KEY), or a file holding it; repeat it for the "
        "keys before and after a rotation",
    )
    parser.add_argument("--checkpoint", help="a checkpoint file you kept earlier")
    args = parser.parse_args(argv)
    try:
        raw = sys.stdin.read() if args.bundle == "-" else Path(args.bundle).read_text()
        bundle = json.loads(raw)
        key = [VerifierKey.parse(_text_or_file(k)) for k in args.key] if args.key else None
        kept = Path(args.checkpoint).read_text() if args.checkpoint else None
        _, lines = verify(bundle, key, kept)
        if key is None:
            trusted = bundle.get("public_key") if isinstance(bundle, dict) else None
            print(
                f"warning: trusting the key in the bundle ({trusted}); pass --key to pin "
                "the log's key as you keep it",
                file=sys.stderr,
            )
    except (Refused, NoteError, ProofError) as exc:
        print(f"REFUSED: {exc}", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, binascii.Error) as exc:
        print(f"REFUSED: cannot read the bundle: {exc}", file=sys.stderr)
        return 1
    print("VERIFIED")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
