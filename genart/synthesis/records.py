"""The typed value `synthesize()` returns: `SynthesisSummary`, whose `as_dict()` is `_SUCCESS`'s JSON object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class SynthesisSummary:
    """A synthesize job's summary. `as_dict()` is `_SUCCESS`'s JSON object, key for key and in this order."""

    items: int  # rows of the dataset, all splits together
    splits: dict  # split name -> rows, e.g. {"train": 80, "validation": 10, "test": 10}
    files: dict  # split -> its data file names (write.write_splits)
    rounds: int  # candidate rounds generated
    candidates: int  # candidates generated over all rounds
    rejected_score: int  # candidates under filter.min_score
    rejected_duplicate: int  # candidates within dedupe.max_distance of a kept one
    independent_accuracy: dict  # {"candidates": float | None, "kept": float | None}: eval's SVC agreement
    seconds: float  # wall time of the run, rounded to ms
    model_id: str  # sha256 of the bundle's weights
    config_hash: str  # config/identity.dataset_digest (0.1.0's hash)
    identity: str | None  # config/identity.dataset_identity; None in a _SUCCESS that 0.1.0 wrote
    genart_version: str | None

    def as_dict(self) -> dict:
        """The `_SUCCESS` object. A field None because the record read back lacked it is left out, so a
        finished job's summary prints as its `_SUCCESS` holds it (a fresh summary has no None field)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> SynthesisSummary:
        """A `_SUCCESS` object read back. Keys an older genart did not write yet are None; unknown keys are
        dropped. Never raises on a dict."""
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})
