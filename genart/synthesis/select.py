"""Choosing dataset items from candidate rounds: score filter, near-duplicate filter, per-class quotas.

Plain Python, no Ray. Candidates are considered round after round, in id order within a round, so what
is kept depends only on the config (seeds, ids, model), never on replicas, batch size or timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genart.filters.dedupe import BKTree

SAMPLES = 10  # kept images per class held for samples.png; every other image stays in the candidates


@dataclass
class Candidates:
    """One round's candidates, in id order (ids already offset to be unique across rounds)."""

    ids: np.ndarray  # int64
    seeds: np.ndarray  # int64
    class_ids: np.ndarray  # int64, the requested class (as in images.Batch)
    phash: np.ndarray  # uint64
    score: np.ndarray | None  # float32, when the quality filter runs


@dataclass
class ClassStats:
    generated: int = 0
    rejected_score: int = 0
    rejected_duplicate: int = 0
    surplus: int = 0  # passed, but the class was already full
    kept: int = 0
    judged_correct_all: int = 0  # independent classifier agrees (every candidate)
    judged_correct_kept: int = 0  # ... among the kept ones

    def acceptance(self) -> float | None:
        considered = self.generated - self.surplus
        return self.kept / considered if considered else None


@dataclass
class Selection:
    """What has been kept so far, and why the rest was not."""

    wanted: dict[int, int]
    min_score: float | None
    max_distance: int | None
    tree: BKTree = field(default_factory=BKTree)
    rows: dict[int, list[dict]] = field(default_factory=dict)  # kept items, without their bytes
    stats: dict[int, ClassStats] = field(default_factory=dict)
    # the first SAMPLES kept images per class (filled by the driver from the candidates, once selected)
    samples: dict[int, list[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for c in self.wanted:
            self.rows.setdefault(c, [])
            self.stats.setdefault(c, ClassStats())
            self.samples.setdefault(c, [])

    def deficit(self) -> dict[int, int]:
        return {c: n - len(self.rows[c]) for c, n in self.wanted.items() if len(self.rows[c]) < n}

    def add_round(self, cand: Candidates, judged: np.ndarray | None = None) -> None:
        """Consider candidates in id order (a round, or one part of a round after the parts before it).
        `judged`: the independent classifier's verdicts."""
        for i in np.argsort(cand.ids, kind="stable"):
            c = int(cand.class_ids[i])
            st = self.stats[c]
            st.generated += 1
            if judged is not None:
                st.judged_correct_all += int(judged[i])
            if len(self.rows[c]) >= self.wanted[c]:
                st.surplus += 1
                continue
            score = None if cand.score is None else float(cand.score[i])
            if self.min_score is not None and score < self.min_score:
                st.rejected_score += 1
                continue
            h = int(cand.phash[i])
            if self.max_distance is not None:
                if self.tree.near(h, self.max_distance):
                    st.rejected_duplicate += 1
                    continue
                self.tree.add(h)
            st.kept += 1
            if judged is not None:
                st.judged_correct_kept += int(judged[i])
            self.rows[c].append(
                {
                    "id": int(cand.ids[i]),
                    "seed": int(cand.seeds[i]),
                    "label": c,
                    "phash": h,
                    "score": score,
                }
            )


def round_plan(sel: Selection, oversample: float, first: bool) -> dict[int, int]:
    """Candidates to generate per short class in the next round: the deficit over the class's observed
    acceptance rate (the `oversample` factor before any is known), at least the deficit, at most 20x it."""
    filtering = sel.min_score is not None or sel.max_distance is not None
    out = {}
    for c, short in sel.deficit().items():
        if not filtering:
            factor = 1.0
        else:
            rate = None if first else sel.stats[c].acceptance()
            factor = (
                oversample if rate is None else min(20.0, max(oversample, 1.1 / rate) if rate > 0 else 20.0)
            )
        out[c] = max(short, int(np.ceil(short * factor)))
    return out


def class_schedule(counts: dict[int, int]) -> list[int]:
    """The class of each candidate id of a round: a cycle over the classes while all still need some
    (so a partial round holds every class), then the rest. Deterministic."""
    left = dict(counts)
    out: list[int] = []
    while left:
        for c in sorted(left):
            out.append(c)
            left[c] -= 1
        left = {c: n for c, n in left.items() if n > 0}
    return out
