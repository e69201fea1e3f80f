"""`genart bench dedupe`: how fast the near-duplicate index answers claims, alone and behind its Ray actor.

Hashes are clustered like perceptual hashes of one model's output (groups of near copies of a few thousand
bases, a few bits flipped), which makes buckets fuller than uniform random hashes would.
"""

from __future__ import annotations

import time

import numpy as np

from genart.filters.dedupe import HashIndex


def clustered_hashes(n: int, seed: int = 0, bases: int = 5000, max_flips: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, bases, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    out = base[rng.integers(0, bases, n)]
    for _ in range(max_flips):
        flip = rng.random(n) < 0.5
        out[flip] ^= np.uint64(1) << rng.integers(0, 64, int(flip.sum())).astype(np.uint64)
    return out


def bench_dedupe(sizes=(100_000, 1_000_000), max_distance: int = 6, batch: int = 256) -> list[dict]:
    """Claims per second into an index that grows to each size, in process and through a Ray actor."""
    import ray

    from genart.ray_session import ray_session

    rows = []
    for n in sizes:
        hashes = clustered_hashes(n)
        ids = np.arange(n)
        index = HashIndex(max_distance)
        t0 = time.perf_counter()
        kept = 0
        for lo in range(0, n, batch):
            kept += sum(index.claim(ids[lo : lo + batch], hashes[lo : lo + batch]))
        local = n / (time.perf_counter() - t0)
        # the last 10% of claims again through an actor holding the first 90%: the index at full size
        with ray_session(None, dashboard=False):
            actor = ray.remote(num_cpus=0)(HashIndex).remote(max_distance)
            cut = int(n * 0.9)
            for lo in range(0, cut, 100_000):
                ray.get(
                    actor.add_many.remote(
                        ids[lo : min(lo + 100_000, cut)], hashes[lo : min(lo + 100_000, cut)]
                    )
                )
            t0 = time.perf_counter()
            for lo in range(cut, n, batch):
                ray.get(actor.claim.remote(ids[lo : lo + batch], hashes[lo : lo + batch]), timeout=600)
            remote = (n - cut) / (time.perf_counter() - t0)
            ray.kill(actor)
        rows.append({"items": n, "kept": kept, "claims_per_s": local, "actor_claims_per_s": remote})
    return rows


def format_report(rows: list[dict], max_distance: int = 6, batch: int = 256) -> str:
    lines = [
        f"near-duplicate index, dedupe.max_distance={max_distance}, claims in batches of {batch}",
        f"  {'claims':>10} {'kept':>10} {'in process':>14} {'via Ray actor (last 10%)':>26}",
    ]
    for r in rows:
        lines.append(
            f"  {r['items']:>10,} {r['kept']:>10,} {r['claims_per_s']:>10,.0f} /s {r['actor_claims_per_s']:>22,.0f} /s"
        )
    return "\n".join(lines)
