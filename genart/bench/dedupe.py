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


def _claims_per_s(index: HashIndex, ids, hashes, batch: int) -> tuple[float, int]:
    t0, kept = time.perf_counter(), 0
    for lo in range(0, len(ids), batch):
        kept += sum(index.claim(ids[lo : lo + batch], hashes[lo : lo + batch]))
    return len(ids) / (time.perf_counter() - t0), kept


def bench_dedupe(sizes=(100_000, 1_000_000), max_distance: int = 6, batch: int = 256) -> list[dict]:
    """Claims per second into an index that grows to each size: with the ranges chosen for that size, with
    plain multi-index hashing (max_distance + 1 exact ranges) side by side, and through a Ray actor."""
    import ray

    from genart.ray_session import ray_session

    rows = []
    for n in sizes:
        hashes = clustered_hashes(n)
        ids = np.arange(n)
        index = HashIndex(max_distance, expected_items=n)
        chosen, kept = _claims_per_s(index, ids, hashes, batch)
        plain_index = HashIndex(max_distance, expected_items=1)  # the most ranges: exact probes only
        plain, _ = _claims_per_s(plain_index, ids, hashes, batch)
        # the last 10% of claims again through an actor holding the first 90%: the index at full size
        with ray_session(None, dashboard=False):
            actor = ray.remote(num_cpus=0)(HashIndex).remote(max_distance, n)
            cut = int(n * 0.9)
            for lo in range(0, cut, 100_000):
                hi = min(lo + 100_000, cut)
                ray.get(actor.add_many.remote(ids[lo:hi], hashes[lo:hi]), timeout=600)
            t0 = time.perf_counter()
            for lo in range(cut, n, batch):
                ray.get(actor.claim.remote(ids[lo : lo + batch], hashes[lo : lo + batch]), timeout=600)
            remote = (n - cut) / (time.perf_counter() - t0)
            ray.kill(actor)
        rows.append(
            {
                "items": n,
                "kept": kept,
                "ranges": len(index.ranges),
                "flip_bits": index.r,
                "claims_per_s": chosen,
                "plain_mih_claims_per_s": plain,
                "actor_claims_per_s": remote,
            }
        )
    return rows


def format_report(rows: list[dict], max_distance: int = 6, batch: int = 256) -> str:
    lines = [
        f"near-duplicate index, dedupe.max_distance={max_distance}, clustered hashes, claims in batches of {batch}",
        f"  {'claims':>10} {'kept':>9} {'ranges':>7} {'chosen ranges':>15} {'d+1 exact ranges':>17} "
        f"{'ratio':>6} {'via Ray actor':>14}",
    ]
    for r in rows:
        lines.append(
            f"  {r['items']:>10,} {r['kept']:>9,} {r['ranges']:>4} r{r['flip_bits']} "
            f"{r['claims_per_s']:>12,.0f}/s {r['plain_mih_claims_per_s']:>15,.0f}/s "
            f"{r['claims_per_s'] / r['plain_mih_claims_per_s']:>5.1f}x {r['actor_claims_per_s']:>12,.0f}/s"
        )
    lines.append("  (via Ray actor: the last 10% of claims, sent to an actor already holding the first 90%)")
    return "\n".join(lines)
