"""Stratified, deterministic train/validation/test assignment. No IO, no Ray."""

from __future__ import annotations

import numpy as np

from genart.config.synthesize import SPLITS


def stratified_counts(sizes: dict[int, int], ratios: dict[str, float]) -> dict[int, dict[str, int]]:
    """Class -> split -> count. Every class gets floor(ratio * n) per split, and its leftover items go one
    each to splits with a fractional share (so each count stays within 1 of ratio * n), to the splits
    furthest below their share of the whole so far (so the split totals stay close to ratio * total too)."""
    names = [s for s in SPLITS if s in ratios]
    given = dict.fromkeys(names, 0)
    seen = 0
    out = {}
    for c in sorted(sizes):
        n = sizes[c]
        seen += n
        exact = {s: ratios[s] * n for s in names}
        counts = {s: int(np.floor(exact[s] + 1e-9)) for s in names}
        left = n - sum(counts.values())
        open_ = [s for s in names if exact[s] - counts[s] > 1e-9]
        open_.sort(key=lambda s: (-(ratios[s] * seen - given[s] - counts[s]), SPLITS.index(s)))
        for s in open_[:left]:
            counts[s] += 1
        for s in names:
            given[s] += counts[s]
        out[c] = counts
    return out


def assign_splits(
    ids: np.ndarray, labels: np.ndarray, ratios: dict[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Split name -> sorted ids. Every class is split on its own (stratified) by a permutation seeded with
    (seed, class) of its ids in sorted order: the same items and seed always give the same split."""
    ids, labels = np.asarray(ids, np.int64), np.asarray(labels, np.int64)
    classes = [int(c) for c in np.unique(labels)]
    counts = stratified_counts({c: int((labels == c).sum()) for c in classes}, ratios)
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS if s in ratios}
    for c in classes:
        members = np.sort(ids[labels == c])
        shuffled = members[np.random.default_rng([seed, c, 0x5B1]).permutation(len(members))]
        lo = 0
        for s, k in counts[c].items():
            out[s].append(shuffled[lo : lo + k])
            lo += k
    return {s: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64) for s, parts in out.items()}
