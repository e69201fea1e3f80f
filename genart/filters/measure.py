"""Per-item measures recorded as metadata columns without filtering: synthesize's candidate rounds. No Ray.

Synthesize used to read every candidate image back, decode it and score, hash and judge it in its driver.
The driver now builds the scorer and the judge exactly as before (fitted in the driver's process: a
LogisticRegression fitted under another BLAS thread count has other coefficients, so other scores) and hands
them to the round's replicas inside a `Measures`; the replicas measure the pixels they generated (the
candidates are PNG, lossless: the very pixels the driver decoded) and write `score`, `phash`, `judged`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from genart.data.digits import pool_to_8x8
from genart.filters.score import phash64
from genart.images import Batch


@dataclass(frozen=True)
class Measures:
    """What a candidate round records per item. `scorer(images, class_ids) -> float32 (N,)` in [0, 1] (the
    quality filter's scorer; its min_score is not applied here) or None; `phash`: the 64-bit perceptual hash;
    `judge`: a fitted classifier of 8x8 digits (`predict`), recorded as `judged` = its label is the class id,
    or None. Picklable: it travels to the replicas with the round's GenerateConfig."""

    scorer: Callable | None = None
    phash: bool = True
    judge: object | None = None

    def columns(self) -> tuple[str, ...]:
        """The metadata columns these measures add, in schema order."""
        on = (("score", self.scorer is not None), ("phash", self.phash), ("judged", self.judge is not None))
        return tuple(name for name, yes in on if yes)

    def __call__(self, batch: Batch) -> Batch:
        """The batch with its measures filled: score float32 (N,), phash uint64 (N,), judged bool (N,), each
        of the batch's uint8 (N, H, W, C) images against its class_ids (int64 (N,)). Each item is measured
        alone, so a value never depends on the batch. Raises ValueError (from the classifiers) when a
        measure needing class ids gets none."""
        images = batch.images
        labels = None if batch.class_ids is None else np.asarray(batch.class_ids).astype(np.int64)
        changes: dict = {}
        if self.scorer is not None:
            changes["score"] = self.scorer(images, labels)
        if self.phash:
            changes["phash"] = phash64(images)
        if self.judge is not None:
            changes["judged"] = self.judge.predict(pool_to_8x8(images)) == labels
        return batch.replace(**changes)
