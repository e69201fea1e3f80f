"""Rejection sampling per item: draw, score, hash, claim; redraw the rejected from derived seeds. No Ray.

Item i's draws use its plan seed, then `attempt_seeds(seed, 1)`, `attempt_seeds(seed, 2)`, ...: a rejected
item is replaced deterministically, the count never changes, and the seed of the draw that was kept is
what the metadata stores, so `load_bundle(...).generate([seed], [class])` still regenerates the item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genart.errors import FilterExhausted
from genart.filters.score import phash64
from genart.ids import derived_seeds
from genart.images import Batch

_ATTEMPT_SALT = np.uint64(0xA77E4D7A5EED0001)


def attempt_seeds(seeds: np.ndarray, attempt: int) -> np.ndarray:
    """The seeds of draw number `attempt` (0 = the plan's own seeds); non-negative int64."""
    seeds = np.asarray(seeds, dtype=np.int64)
    if attempt == 0:
        return seeds
    with np.errstate(over="ignore"):
        salt = np.uint64(attempt) * _ATTEMPT_SALT
    return derived_seeds(seeds, salt)


@dataclass(frozen=True)
class Drawn:
    """One batch after filtering: the kept items (ids and class ids as asked; seeds of the kept draws; uint8
    (N, H, W, C) images; float32 scores when the quality filter runs, uint64 phashes when the near-duplicate
    filter runs; for lossy formats with the near-duplicate filter, the encoded images too) and how many
    draws each filter rejected."""

    batch: Batch
    rejected_score: int = 0
    rejected_duplicate: int = 0


class FilteredDraw:
    """generate(seeds, class_ids) -> uint8 images, wrapped in the quality and near-duplicate filters.

    `scorer(images, class_ids) -> float32` runs when min_score is set; `claim(ids, hashes) -> [bool]` (a
    HashIndex's claim, local or behind a Ray actor) decides near-duplicates when max_distance is set. Items
    that pass the score are claimed in id order; both filters see every redraw. `stored(images) -> (blobs,
    pixels)` encodes images as the output will hold them and gives the pixels those bytes decode to (JPEG/WebP
    change them), so the hash is always that of the stored image and a kept item's bytes are encoded once.
    """

    def __init__(
        self,
        generate: Callable,
        *,
        min_score: float | None = None,
        scorer: Callable | None = None,
        max_distance: int | None = None,
        claim: Callable | None = None,
        max_attempts: int = 20,
        stored: Callable | None = None,
    ):
        if (min_score is None) != (scorer is None) or (max_distance is None) != (claim is None):
            raise ValueError("min_score needs a scorer and max_distance a claim function")
        self.generate, self.min_score, self.scorer = generate, min_score, scorer
        self.max_distance, self.claim, self.max_attempts = max_distance, claim, max_attempts
        self.stored = stored  # images -> (file bytes, the pixels they hold) for lossy formats

    @property
    def active(self) -> bool:
        return self.scorer is not None or self.claim is not None

    def __call__(
        self, ids: np.ndarray, seeds: np.ndarray, class_ids: np.ndarray | None, attempt: int = 0
    ) -> Drawn:
        """Draw until every item passes (or max_attempts). ids, seeds: int64 (N,); class_ids: int (N,) or
        None; `attempt`: the shard attempt, passed to claim. Returns the kept batch in the order of `ids`.
        Raises FilterExhausted naming the first item that found no acceptable draw."""
        ids, seeds = np.asarray(ids, dtype=np.int64), np.asarray(seeds, dtype=np.int64)
        n = len(ids)
        kept_seeds = seeds.copy()
        scores = np.zeros(n, np.float32) if self.scorer is not None else None
        hashes = np.zeros(n, np.uint64) if self.claim is not None else None
        blobs: list[bytes] | None = [b""] * n if self.claim is not None and self.stored else None
        images = None
        todo = np.arange(n)
        rej_score = rej_dup = 0
        seen: list[np.ndarray] = []  # every draw's score: the failure message says where scores lie
        for attempt in range(self.max_attempts):
            cur = attempt_seeds(seeds[todo], attempt)
            cls = None if class_ids is None else np.asarray(class_ids)[todo]
            imgs = self.generate(cur, cls)
            if images is None:
                images = np.empty((n, *imgs.shape[1:]), dtype=imgs.dtype)
            ok = np.ones(len(todo), dtype=bool)
            if self.scorer is not None:
                sc = np.asarray(self.scorer(imgs, cls), dtype=np.float32)
                seen.append(sc)
                ok &= sc >= self.min_score
                rej_score += int((~ok).sum())
                scores[todo[ok]] = sc[ok]
            if self.claim is not None and ok.any():
                passed = todo[ok]
                if self.stored is None:
                    ph = phash64(imgs[ok])
                else:
                    encoded, pixels = self.stored(imgs[ok])
                    ph = phash64(pixels)
                claimed = np.asarray(self.claim(ids[passed], ph, attempt), dtype=bool)
                rej_dup += int((~claimed).sum())
                hashes[passed[claimed]] = ph[claimed]
                if blobs is not None:
                    for k in np.flatnonzero(claimed):
                        blobs[passed[k]] = encoded[k]
                ok[np.flatnonzero(ok)[~claimed]] = False
            images[todo[ok]] = imgs[ok]
            kept_seeds[todo[ok]] = cur[ok]
            todo = todo[~ok]
            if not len(todo):
                cls_all = None if class_ids is None else np.asarray(class_ids)
                batch = Batch(ids, kept_seeds, cls_all, images, blobs=blobs, score=scores, phash=hashes)
                return Drawn(batch, rej_score, rej_dup)
        raise FilterExhausted(self._exhausted(ids[todo], class_ids, todo, rej_score, rej_dup, seen))

    def _exhausted(self, stuck_ids, class_ids, todo, rej_score, rej_dup, seen) -> str:
        first = int(stuck_ids[0])
        cls = "" if class_ids is None else f" (class {int(np.asarray(class_ids)[todo[0]])})"
        parts = []
        if self.scorer is not None:
            sc = np.concatenate(seen)
            q = np.quantile(sc, [0.5, 0.9])
            parts.append(
                f"{rej_score} draws scored below filter.min_score={self.min_score:g}; scores of this batch's "
                f"draws: median {q[0]:.3g}, 90th percentile {q[1]:.3g}, best {sc.max():.3g}"
            )
        if self.claim is not None:
            parts.append(f"{rej_dup} were within dedupe.max_distance={self.max_distance} of other items")
        return (
            f"{len(stuck_ids)} item(s), first id {first}{cls}, found no acceptable draw in "
            f"filter.max_attempts={self.max_attempts} draws ({'; '.join(parts)} in this batch). Raise "
            "filter.max_attempts and re-run: the committed shards are kept and the job resumes. Or lower "
            "filter.min_score or dedupe.max_distance (or set them null): that is a different job, so re-run "
            "with --overwrite or a new output"
        )
