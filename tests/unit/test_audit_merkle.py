"""RFC 6962 / RFC 9162 Merkle hashing and proofs: public test vectors and known answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit.hashing import (
    EMPTY_ROOT,
    canonical_stream,
    event_leaf_hash,
    leaf_data,
    leaf_hash_of_data,
    node_hash,
    root_of,
)
from ledger.audit.proofs import ProofError, verify_consistency, verify_inclusion
from ledger.audit.tree import TILE_HEIGHT, Frontier, Tree, TreeError

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT.parent / "shared" / "vectors" / "rfc6962"


def vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json")) if VECTORS.is_dir() else []


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_the_vectors_are_present() -> None:
    # CI keeps shared/ beside the clone; missing vectors are a failure, never a skip.
    assert VECTORS.is_dir(), f"RFC 6962 test vectors not found at {VECTORS}"
    assert len(vector_files("inclusion")) >= 90
    assert len(vector_files("consistency")) >= 90
    wants = [json.loads(p.read_text())["wantErr"] for p in vector_files("inclusion")]
    assert True in wants and False in wants


def _check(d: dict[str, Any]) -> None:
    if "leafIdx" in d:
        verify_inclusion(
            d["leafIdx"],
            d["treeSize"],
            b64(d["leafHash"]),
            [b64(p) for p in d["proof"] or []],
            b64(d["root"]),
        )
    else:
        verify_consistency(
            d["size1"],
            d["size2"],
            [b64(p) for p in d["proof"] or []],
            b64(d["root1"]),
            b64(d["root2"]),
        )


@pytest.mark.parametrize(
    "path",
    vector_files("inclusion") + vector_files("consistency"),
    ids=lambda p: str(p.relative_to(VECTORS)),
)
def test_vector(path: Path) -> None:
    d = json.loads(path.read_text())
    if d["wantErr"]:
        with pytest.raises(ProofError):
            _check(d)
    else:
        _check(d)


# -- known answers (the vectors' README) -------------------------------------------

README_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]


def test_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash_of_data(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    leaves = [leaf_hash_of_data(bytes.fromhex(h)) for h in README_LEAVES]
    expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert root_of(leaves).hex() == expected
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root().hex() == expected
    assert Tree(ListSource(leaves), 8).root().hex() == expected


def test_vector_roots_come_from_the_readme_leaves() -> None:
    """The happy-path vectors' roots are the roots of prefixes of the README's leaves."""
    leaves = [leaf_hash_of_data(bytes.fromhex(h)) for h in README_LEAVES]
    tree = Tree(ListSource(leaves), 8)
    for path in vector_files("inclusion"):
        d = json.loads(path.read_text())
        if path.name == "happy-path.json":
            size = d["treeSize"]
            assert b64(d["root"]) == root_of(leaves[:size])
            assert b64(d["leafHash"]) == leaves[d["leafIdx"]]
            assert [b64(p) for p in d["proof"] or []] == Tree(tree.source, size).inclusion_proof(
                d["leafIdx"]
            )
    for path in vector_files("consistency"):
        d = json.loads(path.read_text())
        if path.name == "happy-path.json" and d["size1"] < d["size2"]:
            proof = Tree(tree.source, d["size2"]).consistency_proof(d["size1"])
            assert [b64(p) for p in d["proof"] or []] == proof


# -- building proofs from stored hashes ---------------------------------------------


class ListSource:
    """Leaf hashes in memory, with optional cached nodes."""

    def __init__(self, leaves: list[bytes], nodes: dict[tuple[int, int], bytes] | None = None):
        self.leaves = leaves
        self.nodes = nodes or {}
        self.reads = 0

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        self.reads += 1
        return self.leaves[start:stop]

    def cached_node(self, level: int, index: int) -> bytes | None:
        return self.nodes.get((level, index))


def make_leaves(n: int) -> list[bytes]:
    return [leaf_hash_of_data(i.to_bytes(4, "big")) for i in range(n)]


def all_nodes(leaves: list[bytes], min_level: int = TILE_HEIGHT) -> dict[tuple[int, int], bytes]:
    nodes = {}
    level = min_level
    while (1 << level) <= len(leaves):
        width = 1 << level
        for i in range(len(leaves) // width):
            nodes[(level, i)] = root_of(leaves[i * width : (i + 1) * width])
        level += 1
    return nodes


LEAVES = make_leaves(1100)
NODES = all_nodes(LEAVES)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 1100), data=st.data(), cached=st.booleans())
def test_tree_proofs_match_the_reference(size: int, data: st.DataObject, cached: bool) -> None:
    tree = Tree(ListSource(LEAVES, NODES if cached else {}), size)
    root = root_of(LEAVES[:size])
    assert tree.root() == root
    index = data.draw(st.integers(0, size - 1))
    verify_inclusion(index, size, LEAVES[index], tree.inclusion_proof(index), root)
    old = data.draw(st.integers(1, size))
    proof = tree.consistency_proof(old)
    verify_consistency(old, size, proof, root_of(LEAVES[:old]), root)
    if old < size:
        # Any other old root is refused.
        with pytest.raises(ProofError):
            verify_consistency(old, size, proof, root_of(LEAVES[1 : old + 1]), root)


def test_cached_nodes_spare_reading_leaves() -> None:
    source = ListSource(LEAVES, NODES)
    tree = Tree(source, 1024)
    assert tree.root() == NODES[(10, 0)]
    assert source.reads == 0
    tree.inclusion_proof(700)
    assert source.reads == 1  # one tile of leaves


def test_wrong_proofs_are_refused() -> None:
    tree = Tree(ListSource(LEAVES), 300)
    root = tree.root()
    proof = tree.inclusion_proof(17)
    with pytest.raises(ProofError):
        verify_inclusion(18, 300, LEAVES[17], proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(17, 300, LEAVES[17], proof[:-1], root)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    with pytest.raises(ProofError):
        verify_inclusion(17, 300, LEAVES[17], flipped, root)
    with pytest.raises(TreeError):
        tree.inclusion_proof(300)
    with pytest.raises(TreeError):
        tree.consistency_proof(0)


@given(sizes=st.lists(st.integers(1, 600), min_size=1, max_size=5))
@settings(max_examples=30, deadline=None)
def test_frontier_gives_every_prefix_root(sizes: list[int]) -> None:
    frontier = Frontier()
    for i, leaf in enumerate(LEAVES[: max(sizes)]):
        frontier.append(leaf)
        if i + 1 in sizes:
            assert frontier.root() == root_of(LEAVES[: i + 1])


def test_leaf_encoding_is_length_prefixed() -> None:
    data = leaf_data(5, "s", 2, "t", b"xyz")
    version, position = (2).to_bytes(8, "big"), (5).to_bytes(8, "big")
    assert (
        data == b"\x01" + b"\x00\x01t" + b"\x00\x01s" + version + position + b"\x00\x00\x00\x03xyz"
    )
    # Moving a byte between fields changes the leaf.
    assert event_leaf_hash(0, "ab", 1, "c", b"") != event_leaf_hash(0, "a", 1, "bc", b"")
    assert event_leaf_hash(0, "a", 1, "t", b"x") != event_leaf_hash(1, "a", 1, "t", b"x")
    assert node_hash(LEAVES[0], LEAVES[1]) != node_hash(LEAVES[1], LEAVES[0])


@given(st.uuids(), st.text(max_size=40))
def test_canonical_stream_reads_every_spelling_as_uuid_does(sid: UUID, other: str) -> None:
    # The fast path for stored spellings must agree with parsing a UUID.
    for spelling in (sid.hex, str(sid), sid.hex.upper(), f"{{{sid}}}", f"urn:uuid:{sid}"):
        assert canonical_stream(spelling) == str(sid)
    try:
        expected = str(UUID(other))
    except ValueError:
        expected = other
    assert canonical_stream(other) == expected
    assert canonical_stream(sid.hex + "\n") == sid.hex + "\n"
