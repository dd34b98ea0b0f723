"""Roots and proofs (RFC 6962 section 2.1) over stored leaf hashes.

Leaves are grouped in tiles of 16. The hash of every complete perfect subtree of
16 leaves or more is cached as a node (level, index) when its last leaf is written,
so a root or a proof at a million leaves reads about sixteen nodes and one tile.
A missing node is recomputed from the leaves beneath it.
"""

from __future__ import annotations

from typing import Protocol

from ledger.audit.hashing import EMPTY_ROOT, largest_power_of_two_below, node_hash

TILE_HEIGHT = 4
TILE_WIDTH = 1 << TILE_HEIGHT


class HashSource(Protocol):
    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        """Leaf hashes at positions start <= p < stop, in order."""
        ...

    def cached_node(self, level: int, index: int) -> bytes | None:
        """The hash of leaves [index << level, (index + 1) << level), if cached."""
        ...


class TreeError(ValueError):
    """A proof was asked for something the tree does not hold."""


class Frontier:
    """The compact range of a growing tree: one perfect-subtree hash per set bit of its size."""

    __slots__ = ("hashes", "size")

    def __init__(self) -> None:
        self.size = 0
        self.hashes: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        n, hashes, h = self.size, self.hashes, leaf
        while n & 1:
            h = node_hash(hashes.pop(), h)
            n >>= 1
        hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r


class Tree:
    """The tree of the first `size` leaves of `source` (a snapshot: leaves never change)."""

    def __init__(self, source: HashSource, size: int) -> None:
        if size < 0:
            raise TreeError("a tree size is non-negative")
        self.source = source
        self.size = size
        self._tiles: dict[int, list[list[bytes]]] = {}

    def _tile_levels(self, tile: int) -> list[list[bytes]]:
        """Levels 0..TILE_HEIGHT of one tile: its leaves, then each complete pair above them."""
        levels = self._tiles.get(tile)
        if levels is None:
            start = tile * TILE_WIDTH
            leaves = self.source.leaf_hashes(start, min(start + TILE_WIDTH, self.size))
            levels = [leaves]
            while len(levels[-1]) >= 2 and len(levels) <= TILE_HEIGHT:
                below = levels[-1]
                levels.append(
                    [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
                )
            self._tiles[tile] = levels
        return levels

    def perfect(self, start: int, level: int) -> bytes:
        """The hash of the perfect subtree [start, start + 2**level); start is aligned."""
        if level >= TILE_HEIGHT:
            cached = self.source.cached_node(level, start >> level)
            if cached is not None:
                return cached
            if level == TILE_HEIGHT:
                return self._tile_levels(start >> TILE_HEIGHT)[TILE_HEIGHT][0]
            half = 1 << (level - 1)
            return node_hash(self.perfect(start, level - 1), self.perfect(start + half, level - 1))
        levels = self._tile_levels(start >> TILE_HEIGHT)
        return levels[level][(start & (TILE_WIDTH - 1)) >> level]

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for 0 <= lo < hi <= size."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.perfect(lo, n.bit_length() - 1)
        k = largest_power_of_two_below(n)
        return node_hash(self.range_hash(lo, lo + k), self.range_hash(lo + k, hi))

    def root(self) -> bytes:
        return EMPTY_ROOT if self.size == 0 else self.range_hash(0, self.size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[0:size]): the audit path, nearest sibling first."""
        if not 0 <= index < self.size:
            raise TreeError(f"position {index} is not in a tree of size {self.size}")
        path: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = largest_power_of_two_below(hi - lo)
            if index < lo + k:
                path.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.range_hash(lo, lo + k))
                lo = lo + k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:size]) of RFC 6962 section 2.1.2."""
        if not 0 < old_size <= self.size:
            raise TreeError(
                f"no consistency proof from size {old_size} to size {self.size}: "
                "the old size must be between 1 and the new size"
            )
        proof: list[bytes] = []
        m, lo, hi, complete = old_size, 0, self.size, True
        while m != hi - lo:
            k = largest_power_of_two_below(hi - lo)
            if m <= k:
                proof.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_hash(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self.range_hash(lo, hi))
        proof.reverse()
        return proof
