"""Per-item measures recorded as metadata columns without filtering: synthesize's candidate rounds. No Ray.

Synthesize used to read every candidate image back, decode it and score, hash and judge it in the driver;
the replicas now compute the same values on the pixels they generated (the candidates are PNG, lossless, so
these are the very pixels the driver decoded) with the same scorer, and synthesize reads the columns.
"""

from __future__ import annotations

import numpy as np

from genart.data.digits import pool_to_8x8
from genart.filters.score import digit_classifier, make_scorer, phash64
from genart.images import Batch


class Measurer:
    """`Measurer(cfg, meta)(batch)` -> the batch with `score`, `phash` and `judged` filled as `cfg.measures`
    asks (a GenerateConfig; `meta` the bundle's meta). The scorer is built as synthesize built it in its
    driver (`make_scorer(filter, meta, model, storage options)`, on the CPU), so scores are the same."""

    def __init__(self, cfg, meta: dict):
        m = cfg.measures
        self.phash = m.phash
        self.scorer = None if m.score is None else make_scorer(m.score, meta, cfg.model, cfg.storage.options)
        self.judge = digit_classifier() if m.judged else None

    def __call__(self, batch: Batch) -> Batch:
        """Measure the batch's uint8 (N, H, W, C) images against its class_ids. score: float32 (N,) in
        [0, 1]; phash: uint64 (N,); judged: bool (N,), the digits SVC's label equals the class id. Raises
        ValueError (from the classifiers) when a measure needing class_ids gets None."""
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
