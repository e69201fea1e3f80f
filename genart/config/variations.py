"""Schema of a generate config's `variations` block: children around, and between, kept pieces.

    variations: {of: OUT, picks: picks.json, per_item: 20, radius: 0.3, cross: true}

`of` and `picks` name where the parents come from; `parent_job` and `parents` are what the job read there,
filled in when the job starts (genart/generation/parents.py), so _job.json holds every parent's id, seed
and class and the job regenerates (and `genart verify` checks it) from its own record.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from genart.config.common import MAX_CLASS_ID, Seed, Strict

MAX_PARENTS = 10_000  # kept pieces one variations job reads (crossing makes n (n - 1) / 2 pairs of them)
MAX_RADIUS = 10.0  # per latent coordinate: 10 standard deviations is already far off the prior
MAX_PER_ITEM = 10_000
MAX_PER_PAIR = 100
MAX_LATENT = 4096  # values of a recorded parent latent


class ParentRef(Strict):
    """One kept piece as its output's metadata row names it: its id, seed and class id (null when the model
    is unconditional), and the latent it was made from (float32 values, as JSON numbers: exact), which its
    seed regenerates for a plain output and its own record for a variations output."""

    id: int = Field(ge=0)
    seed: Seed
    class_id: Annotated[int, Field(ge=0, le=MAX_CLASS_ID)] | None = None
    latent: list[float] = Field(default_factory=list, max_length=MAX_LATENT)


class VariationsConfig(Strict):
    of: str = Field(min_length=1, description="URI of the genart output holding the kept pieces")
    picks: str = Field(
        min_length=1, description='URI of the picks file: {"output", "job_id", "keep": [ids], "reject"}'
    )
    per_item: int = Field(20, description="children around each kept piece (at least 1)")
    radius: float = Field(
        0.3,
        description="how far each child's latent lies from its parent's: the distance divided by "
        "sqrt(latent_dim), i.e. the RMS change per latent coordinate (latents are N(0, 1) per coordinate)",
    )
    cross: bool = Field(False, description="also make children between every pair of kept pieces (slerp)")
    cross_per_pair: int = Field(
        1, ge=1, le=MAX_PER_PAIR, description="children per pair, at t = 1/(n+1) .. n/(n+1) along the slerp"
    )
    keep_class: bool = Field(
        True, description="children keep their parents' classes; false: the job's `classes` block picks them"
    )
    # filled when the job starts (any value given here is replaced): what `of` and `picks` held then
    parent_job: str = Field("", description="the job_id of the output the parents come from (set by genart)")
    parents: list[ParentRef] = Field(
        default_factory=list, max_length=MAX_PARENTS, description="the kept pieces, by id (set by genart)"
    )

    @field_validator("per_item")
    @classmethod
    def _per_item(cls, v: int) -> int:
        if not 1 <= v <= MAX_PER_ITEM:
            raise ValueError(f"must be 1..{MAX_PER_ITEM}: the number of children made around each kept piece")
        return v

    @field_validator("radius")
    @classmethod
    def _radius(cls, v: float) -> float:
        if not 0 <= v <= MAX_RADIUS:  # far beyond MAX_RADIUS latents overflow into blank images
            raise ValueError(
                f"must be 0..{MAX_RADIUS:g}: the distance of each child's latent from its parent's, per latent "
                "coordinate (0 = the parent itself, 0.3 = a close variation, 1 = far)"
            )
        return v
