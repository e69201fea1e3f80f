"""The id rules every stage shares: an item id -> its seed, a shard index -> its id range.

Plain NumPy; a rule here changes output bytes, so each is written once."""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function applied elementwise: uint64 array in -> uint64 array of the same shape
    out (wrapping arithmetic, no errors). Steele, Lea & Flood, "Fast splittable pseudorandom number
    generators" (OOPSLA 2014); constants as in Vigna's splitmix64.c."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def item_seeds(job_seed: int, ids: np.ndarray) -> np.ndarray:
    """Per-item seeds from (job seed, id): int64 (N,), non-negative (63 bits), for integer ids (N,) >= 0;
    independent of replicas, batch and shard size. splitmix64(splitmix64(job_seed) ^ id) >> 1."""
    ids = np.asarray(ids, dtype=np.uint64)
    mixed = splitmix64(splitmix64(np.full_like(ids, job_seed, dtype=np.uint64)) ^ ids)
    return (mixed >> np.uint64(1)).astype(np.int64)


def mix(seeds: np.ndarray, salt: np.uint64) -> np.ndarray:
    """splitmix64(seed ^ salt) per seed: int64 or uint64 (N,) in, uint64 (N,) out. A salt names one use of
    the seed (a class draw, a redraw), so the uses draw independent numbers from the same seed."""
    return splitmix64(np.asarray(seeds).astype(np.uint64) ^ np.uint64(salt))


def derived_seeds(seeds: np.ndarray, salt: np.uint64) -> np.ndarray:
    """New seeds derived from `seeds` (int64 (N,)) under `salt`: int64 (N,), non-negative (mix >> 1)."""
    return (mix(seeds, salt) >> np.uint64(1)).astype(np.int64)


def num_shards(count: int, size: int) -> int:
    """How many shards of `size` ids hold ids 0..count-1 (the last one may be short); size >= 1."""
    return -(-count // size)


def shard_range(k: int, size: int, count: int) -> tuple[int, int]:
    """Ids [lo, hi) of shard k: [k * size, min((k + 1) * size, count)). Not clamped: for k beyond the last
    shard hi < lo (an empty range), which callers that check stray shards rely on."""
    lo = k * size
    return lo, min(lo + size, count)
