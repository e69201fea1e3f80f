"""Pieces shared by every job config: the strict base model, storage options, and the bounds that the
plan, Ray and the output columns put on seeds, resources and shard counts."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# the job seed is mixed into 64-bit item seeds (genart/ids.py) that the int64 `seed` column stores
MAX_SEED = 2**63 - 1
MAX_SHARDS = 2**31 - 1  # the `shard` column is int32
MAX_CLASS_ID = 2**31 - 1  # the `class_id` column is int32
RESOURCE_STEP = 0.0001  # Ray's resource precision: a smaller fraction is refused when the actor starts
MAX_CPUS, MAX_GPUS = 1024, 64  # per replica

SCALARS = (str, int, float, bool)
MAX_DEPTH = 2  # s3_additional_kwargs: {...} is one level; config_kwargs: {s3: {addressing_style: path}} two


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment, and floats
    are finite (NaN and infinity pass comparisons such as `ratios sum to 1` by accident)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def check_option(key: str, value: Any, depth: int = 0) -> None:
    """Raise ValueError unless `value` is a scalar or a mapping (string keys) of such, at most MAX_DEPTH deep:
    what fsspec/s3fs take from a config (s3fs passes mappings such as s3_additional_kwargs on to botocore)."""
    if isinstance(value, SCALARS):
        return
    if isinstance(value, dict) and depth < MAX_DEPTH:
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{key}: key {k!r} is not a string")
            check_option(f"{key}.{k}", v, depth + 1)
        return
    if isinstance(value, dict):
        what = "a mapping nested more than two levels deep"
    else:
        what = "null" if value is None else f"a {type(value).__name__}"
    raise ValueError(
        f"{key} is {what}; an option is a string, number or boolean, or a mapping of them "
        "up to two levels deep (e.g. s3_additional_kwargs: {ServerSideEncryption: AES256})"
    )


class StorageOptions(Strict):
    """fsspec storage options for the job's URIs (e.g. ``endpoint_url`` for S3).

    Values are scalars or mappings of scalars up to two levels deep, e.g.
    ``s3_additional_kwargs: {ServerSideEncryption: aws:kms}`` or ``config_kwargs: {s3: {addressing_style: path}}``.
    Credentials are best left to the standard AWS variables; anything given here is passed to
    workers but never written to outputs or logs.
    """

    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _fsspec_values(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key, value in options.items():
            check_option(key, value)
        return options


def _seed(v: int) -> int:
    if not 0 <= v <= MAX_SEED:
        raise ValueError(
            f"must be an integer in 0..{MAX_SEED} (2**63-1: the plan mixes it into 64-bit item seeds, "
            "stored in the int64 `seed` column)"
        )
    return v


def _cpus(v: float) -> float:
    if not RESOURCE_STEP <= v <= MAX_CPUS:
        raise ValueError(
            f"must be in {RESOURCE_STEP:g}..{MAX_CPUS} (Ray counts resources in steps of 0.0001)"
        )
    return v


def _gpus(v: float) -> float:
    if v != 0 and (not RESOURCE_STEP <= v <= MAX_GPUS or (v > 1 and not float(v).is_integer())):
        raise ValueError(
            f"must be 0, a fraction in {RESOURCE_STEP:g}..1 (replicas share a GPU) or a whole number up to "
            f"{MAX_GPUS} (Ray refuses fractions above 1)"
        )
    return v


Seed = Annotated[int, AfterValidator(_seed)]
Cpus = Annotated[float, AfterValidator(_cpus)]
Gpus = Annotated[float, AfterValidator(_gpus)]


class ProvenanceConfig(Strict):
    """What each image says about how it was made (genart/market/xmp.py)."""

    xmp: bool = Field(
        True,
        description="put an XMP packet into every image: IPTC DigitalSourceType trainedAlgorithmicMedia and "
        "genart's model_id, job_id, id and seed (deterministic bytes); false = no packet",
    )


class RunResources(Strict):
    """How a job runs on Ray, shared by `kind: generate` and `kind: synthesize`: replica count and size, the
    batch per forward pass, storage options and the Ray address. None of these keys changes output bytes.

    A subclass names its whole key order in FIELD_ORDER (its own keys and these): pydantic puts inherited
    fields first, and the configs' key order (model_dump, so _job.json; the order of validation errors)
    must stay as it was. A FIELD_ORDER that misses or invents a key raises TypeError at import.
    """

    FIELD_ORDER: ClassVar[tuple[str, ...]] = ()

    replicas: int = Field(2, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=65_536)
    cpus_per_replica: Cpus = 1.0
    gpus_per_replica: Gpus = Field(0.0, description="fractions share a GPU between replicas")
    storage: StorageOptions = Field(default_factory=StorageOptions)
    address: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        order = cls.__dict__.get("FIELD_ORDER")
        if not order:
            return
        fields = cls.__pydantic_fields__
        if sorted(order) != sorted(fields):
            raise TypeError(
                f"{cls.__name__}.FIELD_ORDER must name each field once; "
                f"missing {sorted(set(fields) - set(order))}, unknown {sorted(set(order) - set(fields))}"
            )
        cls.__pydantic_fields__ = {k: fields[k] for k in order}
        cls.model_rebuild(force=True)
