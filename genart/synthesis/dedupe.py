"""Near-duplicate detection over 64-bit perceptual hashes: a BK-tree under Hamming distance. No IO, no Ray.

Greedy in id order: an item is kept only if no kept item is within `max_distance`, so no two kept items
are that close, and the result depends only on the ids and hashes, not on which replica made what.
"""

from __future__ import annotations


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class BKTree:
    """Hashes (Python ints) in a Burkhard-Keller tree: `near(h, r)` visits only subtrees that can hold a match
    (by the triangle inequality), so a lookup with a small radius touches a small part of the tree."""

    def __init__(self) -> None:
        self.root: list | None = None  # node = [hash, {distance: child node}]
        self.size = 0

    def add(self, h: int) -> None:
        self.size += 1
        if self.root is None:
            self.root = [h, {}]
            return
        node = self.root
        while True:
            d = hamming(h, node[0])
            child = node[1].get(d)
            if child is None:
                node[1][d] = [h, {}]
                return
            node = child

    def near(self, h: int, radius: int) -> bool:
        """Is some hash in the tree within `radius` of h?"""
        if self.root is None:
            return False
        stack = [self.root]
        while stack:
            value, children = stack.pop()
            d = hamming(h, value)
            if d <= radius:
                return True
            for dist, child in children.items():
                if d - radius <= dist <= d + radius:
                    stack.append(child)
        return False


def greedy_unique(hashes, max_distance: int | None, tree: BKTree | None = None) -> list[bool]:
    """For hashes in id order: True for each kept one (none within max_distance of an earlier kept one)."""
    tree = tree if tree is not None else BKTree()
    keep = []
    for h in hashes:
        h = int(h)
        ok = max_distance is None or not tree.near(h, max_distance)
        if ok:
            tree.add(h)
        keep.append(ok)
    return keep
