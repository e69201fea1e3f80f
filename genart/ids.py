"""The id rules every stage shares: an item id -> its seed, a shard index -> its id range.

Plain NumPy; a rule here changes output bytes, so each is written once."""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def item_seeds(job_seed: int, ids: np.ndarray) -> np.ndarray:
    """Per-item seeds (int64, non-negative) from (job seed, id): independent of replicas, batch and shard size."""
    ids = np.asarray(ids, dtype=np.uint64)
    mixed = splitmix64(splitmix64(np.full_like(ids, job_seed, dtype=np.uint64)) ^ ids)
    return (mixed >> np.uint64(1)).astype(np.int64)
