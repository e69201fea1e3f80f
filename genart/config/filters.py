"""Filter keys shared by `generate` and `synthesize`: the quality filter and the near-duplicate filter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from genart.config.common import Strict


class DedupeConfig(Strict):
    max_distance: int | None = Field(
        None,
        ge=0,
        le=64,
        description="no two items of the output within this Hamming distance (64-bit phash); null = off",
    )


class QualityFilter(Strict):
    min_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="keep only items whose score is at least this (scores are probabilities, 0..1); null = off",
    )
    scorer: Literal["classifier", "discriminator"] = Field(
        "classifier",
        description="`classifier`: the probability a classifier gives the requested class (conditional "
        "models); `discriminator`: D(x, y)'s percentile rank among the model's own samples of the class (GAN bundles exported with their D)",
    )
    classifier: Literal["digits"] = Field(
        "digits", description="the judge: `digits` = a classifier trained on the real digits (10 classes)"
    )


class GenerateFilter(QualityFilter):
    max_attempts: int = Field(
        100,
        ge=1,
        le=10000,
        description="draws per item (its own seed, then seeds derived from it) before the job stops",
    )


class SynthesizeFilter(QualityFilter):
    max_attempts: int = Field(
        5, ge=1, le=100, description="rounds of candidates before giving up on a class that stays short"
    )
    oversample: float = Field(
        1.25,
        ge=1.0,
        le=10.0,
        description="candidates per missing item in a round (before acceptance rates are known)",
    )
