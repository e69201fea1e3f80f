"""Schema of `kind: synthesize` configs: a labelled dataset (train/validation/test) from a conditional bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from genart.config.common import ProvenanceConfig, RunResources, Seed
from genart.config.filters import DedupeConfig, SynthesizeFilter
from genart.config.generate import keyed_by_class_id

SPLITS = ("train", "validation", "test")
SplitName = Literal["train", "validation", "test"]
MAX_ITEMS = 10**8  # items of a dataset (candidate rounds hold each item's class in memory)
MAX_CLASS = 10_000  # the most classes a bundle has (train's model.num_classes)


class SynthesizeConfig(RunResources):
    FIELD_ORDER: ClassVar[tuple[str, ...]] = (
        "kind",
        "model",
        "output",
        "per_class",
        "splits",
        "seed",
        "replicas",
        "batch_size",
        "shard_size",
        "candidate_shard_size",
        "cpus_per_replica",
        "gpus_per_replica",
        "keep_candidates",
        "dedupe",
        "filter",
        "storage",
        "address",
        "provenance",
    )

    kind: Literal["synthesize"]
    model: str = Field(description="URI of a class-conditional model bundle")
    output: str = Field(description="URI of the dataset folder (local path, file://, s3://)")
    per_class: int | dict[int | str, int] = Field(
        1000,
        description="items per class, or a mapping class (id, or name in the bundle's class_names) -> items "
        "(classes left out get none)",
    )
    splits: dict[SplitName, float] = Field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1},
        description="split -> share of every class; the shares sum to 1",
    )
    seed: Seed = 0
    shard_size: int = Field(10000, ge=1, le=10**7, description="rows per output Parquet file")
    candidate_shard_size: int = Field(
        1000, ge=1, le=10**7, description="items per shard of a candidate round"
    )
    keep_candidates: bool = Field(
        False, description="keep OUTPUT/_candidates (every generated candidate) after the dataset is written"
    )
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    filter: SynthesizeFilter = Field(default_factory=SynthesizeFilter)
    provenance: ProvenanceConfig = Field(default_factory=ProvenanceConfig)

    @field_validator("per_class")
    @classmethod
    def _positive(cls, v: int | dict[int | str, int]) -> int | dict[int | str, int]:
        counts = v.values() if isinstance(v, dict) else [v]
        if isinstance(v, dict) and not v:
            raise ValueError("the mapping names no class; give an int or {class_id_or_name: count, ...}")
        if isinstance(v, dict) and any(isinstance(c, int) and not 0 <= c < MAX_CLASS for c in v):
            raise ValueError(f"class ids are integers in 0..{MAX_CLASS - 1}")
        if isinstance(v, dict) and any(isinstance(c, str) and not c.strip() for c in v):
            raise ValueError("a class name is empty")
        if any(c < 1 for c in counts):
            raise ValueError("every count must be at least 1")
        if sum(counts) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} items in all (got {sum(counts)})")
        return v

    @field_validator("splits")
    @classmethod
    def _sum_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("name at least one of train, validation, test")
        if any(r < 0 for r in v.values()):
            raise ValueError(f"ratios must be non-negative (got {v})")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"the ratios sum to {total:g}, not 1; e.g. splits: {{train: 0.8, validation: 0.1, test: 0.1}}"
            )
        return v

    def class_counts(self, num_classes: int) -> dict[int, int]:
        """Class id -> items wanted (checked against the model by the caller); names must have been resolved
        by `resolve_per_class` first (ValueError otherwise)."""
        if isinstance(self.per_class, dict):
            if any(isinstance(c, str) for c in self.per_class):
                raise ValueError("per_class holds class names: resolve_per_class first")
            return dict(sorted(self.per_class.items()))
        return {c: self.per_class for c in range(num_classes)}


def resolve_per_class(cfg: SynthesizeConfig, class_names: Sequence[str] | None) -> SynthesizeConfig:
    """`cfg` with every class name among per_class's keys replaced by its id in `class_names` (the bundle's);
    `cfg` itself when the keys are ids only, so id-based datasets keep their identity. A decimal string that
    is no name stays the id it always was. Raises ConfigError naming per_class for an unknown name (listing
    the model's names) or for a class given twice (by name and by id)."""
    v = cfg.per_class
    if not isinstance(v, dict) or all(isinstance(c, int) for c in v):
        return cfg
    return cfg.model_copy(update={"per_class": keyed_by_class_id(v, class_names, "per_class")})
