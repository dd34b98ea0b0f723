"""Proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2). Standard library only."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.audit.hashing import EMPTY_ROOT, HASH_SIZE, node_hash


class ProofError(Exception):
    """A proof does not verify; the message says which check failed."""


def _check_sizes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(p)} bytes, not {HASH_SIZE}")


def root_from_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` implies for the leaf at `leaf_index` in a tree of `tree_size`."""
    if leaf_index < 0 or leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
    _check_sizes(proof)
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows the leaf is in the tree with this `root`."""
    if root_from_inclusion(leaf_index, tree_size, leaf_hash, proof) != root:
        raise ProofError(
            f"the inclusion proof for leaf {leaf_index} does not lead to the root "
            f"of the tree of size {tree_size}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ProofError unless `proof` shows tree (size1, root1) is a prefix of (size2, root2)."""
    if size1 < 0 or size2 < 0:
        raise ProofError("tree sizes are non-negative")
    if size2 < size1:
        raise ProofError(f"size {size2} is smaller than size {size1}: a log never shrinks")
    if size1 == size2:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of nothing")
        return
    if size1 == 0:
        raise ProofError("every tree extends the empty tree: a proof from size 0 proves nothing")
    if not proof:
        raise ProofError("an empty consistency proof between different sizes")
    _check_sizes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: the old root is a node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != root1:
        raise ProofError(f"the consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"the consistency proof does not lead to the root of size {size2}")
