"""Near-duplicate detection over 64-bit perceptual hashes. No IO, no Ray.

`BKTree`: synthesize's filter (synthesis/select.py), applied in id order after all candidates exist.
`HashIndex`: generate's filter, claims checked and inserted while replicas run (see its docstring).

Greedy in id order: an item is kept only if no kept item is within `max_distance`, so no two kept items
are that close, and the result depends only on the ids and hashes, not on which replica made what.
"""

from __future__ import annotations

import itertools
import math


def hamming(a: int, b: int) -> int:
    """Differing bits of two 64-bit hashes (Python ints >= 0): an int in 0..64."""
    return (a ^ b).bit_count()


class BKTree:
    """Hashes (Python ints) in a Burkhard-Keller tree: `near(h, r)` visits only subtrees that can hold a match
    (by the triangle inequality), so a lookup with a small radius touches a small part of the tree."""

    def __init__(self) -> None:
        self.root: list | None = None  # node = [hash, {distance: child node}]
        self.size = 0

    def add(self, h: int) -> None:
        """Insert hash h (a Python int in 0..2**64-1); duplicates are kept."""
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


def _ranges(m: int) -> list[tuple[int, int, int]]:
    """(shift, mask, bits) of m disjoint bit ranges covering the 64 bits."""
    bounds = [round(i * 64 / m) for i in range(m + 1)]
    return [(lo, (1 << (hi - lo)) - 1, hi - lo) for lo, hi in zip(bounds, bounds[1:], strict=False)]


def _flips(bits: int, r: int) -> list[int]:
    """Every XOR mask of at most r set bits within `bits` bits (0 first)."""
    out = [0]
    for k in range(1, r + 1):
        out += [sum(1 << b for b in c) for c in itertools.combinations(range(bits), k)]
    return out


def _probes(bits: int, r: int) -> int:
    return sum(math.comb(bits, k) for k in range(r + 1))


def choose_ranges(max_distance: int, expected_items: int) -> int:
    """How many ranges to cut the hash into: m ranges with r = max_distance // m differing bits allowed per
    range cost about m * probes(64/m, r) * (1 + items / 2^(64/m)) comparisons per lookup; the cheapest m
    for the expected size (at most 4,096 probes per range)."""
    best, best_cost = max_distance + 1, None
    for m in range(1, min(max_distance + 1, 64) + 1):
        bits, r = 64 // m, max_distance // m
        p = _probes(bits, r)
        if p > 4096:
            continue
        cost = m * p * (1 + expected_items / 2.0**bits)
        if best_cost is None or cost < best_cost:
            best, best_cost = m, cost
    return best


class HashIndex:
    """Accepted hashes of a whole output, each owned by one item id: `claim` is check-and-insert.

    Multi-index hashing: the 64 bits are cut into m disjoint ranges and one table per range maps that
    range's value to the hashes holding it. Two hashes within max_distance differ in at most max_distance
    bits, so (pigeonhole) some range differs in at most r = max_distance // m bits: a lookup probes, in each
    table, the values within r bits of the hash's own, and compares only against what it finds there. m is
    chosen from max_distance and the expected number of items (`choose_ranges`), so lookups stay a small
    part of the index as it grows.
    An item owns at most one hash; its own hash never blocks it, so a retried shard re-claims what its items
    claimed before. Plain Python: the generation driver runs one instance as a Ray actor, so claims from
    every replica are applied one batch at a time, in one place.
    """

    def __init__(self, max_distance: int, expected_items: int = 1_000_000):
        self.d = max_distance
        m = choose_ranges(max_distance, expected_items) if max_distance < 64 else 1
        self.r = max_distance // m if max_distance < 64 else 0  # d >= 64: near() needs no lookups
        self.ranges = _ranges(m)
        self.flips = [_flips(bits, self.r) for _, _, bits in self.ranges]
        self.tables: list[dict[int, dict[int, int]]] = [{} for _ in self.ranges]  # value -> {owner: hash}
        self.owned: dict[int, int] = {}  # item id -> its hash
        self.attempts: dict[int, int] = {}  # item id -> the latest shard attempt (> 0) that claimed for it
        self.claims = 0

    def __len__(self) -> int:
        return len(self.owned)

    def _keys(self, h: int):
        return [(h >> lo) & mask for lo, mask, _ in self.ranges]

    def near(self, h: int, owner: int | None = None) -> int | None:
        """The id of an item (other than `owner`) whose hash is within max_distance of h, else None."""
        if self.d >= 64:  # every pair of 64-bit hashes is within 64 bits
            return next((o for o in self.owned if o != owner), None)
        d = self.d
        for table, key, flips in zip(self.tables, self._keys(h), self.flips, strict=True):
            for f in flips:
                bucket = table.get(key ^ f)
                if bucket:
                    for other, g in bucket.items():
                        if (h ^ g).bit_count() <= d and other != owner:
                            return other
        return None

    def _remove(self, owner: int) -> None:
        old = self.owned.pop(owner, None)
        if old is not None:
            for table, key in zip(self.tables, self._keys(old), strict=True):
                bucket = table[key]
                bucket.pop(owner, None)
                if not bucket:
                    del table[key]

    def add(self, owner: int, h: int) -> None:
        """Insert without checking (hashes of committed shards on resume)."""
        self._remove(owner)
        self.owned[owner] = h
        for table, key in zip(self.tables, self._keys(h), strict=True):
            table.setdefault(key, {})[owner] = h

    def add_many(self, ids, hashes) -> int:
        """Insert (id, hash) pairs unchecked (ids int (N,), hashes uint64 (N,)); returns how many items the
        index holds. Raises ValueError when the lengths differ."""
        for i, h in zip(ids, hashes, strict=True):
            self.add(int(i), int(h))
        return len(self.owned)

    def claim(self, ids, hashes, attempt: int = 0) -> list[bool]:
        """ids int (N,), hashes uint64 (N,) -> N booleans. For each (id, hash) in order: True and inserted when no other item's hash is within max_distance
        (including those accepted earlier in this call), else False and nothing changes for that id.

        `attempt`: the shard attempt making the claim. A claim from an older attempt than one already seen for
        the item is refused: a replica killed as hung may still have calls queued here, and they must not
        replace what the attempt that replaced it claimed. Raises ValueError when the lengths differ."""
        out = []
        for i, h in zip(ids, hashes, strict=True):
            i, h = int(i), int(h)
            if self.attempts.get(i, 0) > attempt:
                out.append(False)
                continue
            ok = self.near(h, owner=i) is None
            if ok:
                self.add(i, h)
                if attempt:
                    self.attempts[i] = attempt
            out.append(ok)
        self.claims += len(out)
        return out

    def stats(self) -> dict:
        """{"items": hashes held, "claims": claims answered so far}."""
        return {"items": len(self.owned), "claims": self.claims}
