"""Schema of `kind: generate` configs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_serializer, model_validator

from genart.config.common import MAX_CLASS_ID, MAX_SHARDS, ProvenanceConfig, RunResources, Seed, Strict
from genart.config.filters import DedupeConfig, GenerateFilter
from genart.config.variations import VariationsConfig
from genart.errors import ConfigError
from genart.ids import num_shards

BLEND_TOLERANCE = 1e-6  # how far classes.blend's weights may sum from 1
MAX_CLASS_NAME = 1000  # characters of a class name in classes.ids
# a class: its id, or its name in the bundle's class_names (resolved by resolve_class_names)
ClassRef = (
    Annotated[int, Field(ge=0, le=MAX_CLASS_ID)]
    | Annotated[str, Field(min_length=1, max_length=MAX_CLASS_NAME)]
)


class ImageConfig(Strict):
    format: Literal["png", "webp", "jpeg"] = "png"
    quality: int = Field(90, ge=1, le=100, description="webp/jpeg quality")


def check_image_format(image: ImageConfig, channels: int) -> None:
    """ConfigError naming image.format when the bundle's images (`channels`, from its model.json) cannot be
    stored in it: JPEG has no alpha channel, so an RGBA (4-channel) model needs png or webp."""
    if image.format == "jpeg" and channels == 4:
        raise ConfigError(
            "image.format: jpeg has no alpha channel, but this model makes RGBA images (model.channels 4); "
            "use image.format: png or webp to keep the transparency"
        )


class ClassesConfig(Strict):
    """Which class each id asks for (conditional models only). `ids` holds class ids or class names (the
    bundle's model.json `class_names`); names become ids when the job reads the bundle (resolve_class_names),
    so _job.json and the job's identity record ids."""

    mode: Literal["round_robin", "list", "weighted"] = "round_robin"
    ids: list[ClassRef] = Field(
        default_factory=list, description="class ids or names for `list` (cycled) or `weighted`"
    )
    weights: list[float] = Field(default_factory=list, description="one per entry of `ids` for `weighted`")
    blend: dict[ClassRef, float] = Field(
        default_factory=dict,
        max_length=MAX_CLASS_ID,
        description="a mix of classes for every item (conditional models): {class id or name: weight}, "
        "weights summing to 1; the generator's class embeddings are blended by these weights",
    )

    @model_serializer(mode="wrap")
    def _empty_blend_left_out(self, handler):
        """Leave blend out of dumps (so of _job.json and its hash) while it is empty: jobs written before the
        key existed keep their config_hash."""
        data = handler(self)
        if not self.blend and isinstance(data, dict):
            data.pop("blend", None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ClassesConfig:
        if self.blend:
            if self.mode != "round_robin" or self.ids:
                raise ValueError(
                    "classes.blend gives every item the same mix of classes: leave classes.mode and "
                    "classes.ids unset with it"
                )
            total = sum(self.blend.values())
            if any(w < 0 for w in self.blend.values()) or abs(total - 1) > BLEND_TOLERANCE:
                raise ValueError(
                    f"classes.blend weights must be >= 0 and sum to 1; they sum to {total:g} "
                    "(e.g. {Flags: 0.7, Symbols: 0.3})"
                )
        if self.mode in ("list", "weighted") and not self.ids:
            raise ValueError(f"classes.ids must list class ids or names when classes.mode is {self.mode!r}")
        if self.mode == "weighted" and len(self.weights) != len(self.ids):
            raise ValueError("classes.weights needs one weight per entry of classes.ids")
        if any(w < 0 for w in self.weights) or (self.weights and sum(self.weights) <= 0):
            raise ValueError("classes.weights must be non-negative with a positive sum")
        return self


class MarketConfig(Strict):
    standard: Literal["none", "opensea"] = "none"
    base_uri: str = ""
    name: str = "genart"
    description: str = ""
    token_suffix: Literal[".json", ""] = Field(
        ".json",
        description='token file names: tokens/{id}.json, or "" for tokens/{id} (a stock ERC-721 '
        "contract's tokenURI = baseURI + tokenId); both are served as application/json on object stores",
    )

    @model_serializer(mode="wrap")
    def _default_suffix_left_out(self, handler):
        """Leave token_suffix out of dumps (so of _job.json and its hash) while it is the default: jobs
        written before the key existed keep their config_hash."""
        data = handler(self)
        if self.token_suffix == ".json" and isinstance(data, dict):
            data.pop("token_suffix", None)
        return data

    @field_validator("base_uri")
    @classmethod
    def _is_uri(cls, v: str) -> str:
        if v and "://" not in v:
            raise ValueError("market.base_uri must be a URI such as ipfs://CID/ or https://host/path/")
        return v

    @model_validator(mode="after")
    def _opensea_needs_base_uri(self) -> MarketConfig:
        if self.standard == "opensea" and not self.base_uri:
            raise ValueError(
                "market.base_uri is required when market.standard is opensea: the URI the output folder is "
                "published at (e.g. ipfs://CID/ or https://host/collection/); token images are base_uri + path"
            )
        return self


class InferenceConfig(Strict):
    """How a replica runs its generator and encodes (the GPU path: genart/generation/engine.py).

    Only `precision` changes pixels, so it is part of the job's identity (config_hash): a resumed job
    must keep it. The other keys are execution-only: `exclude=True` keeps them out of `model_dump`, so out
    of _job.json and its hash, and a resumed job may change them (config/identity.py's EXECUTION_KEYS names
    top-level keys only).
    """

    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32 = the reference pixels; bf16 = autocast (CUDA or CPU), faster on GPUs, pixels "
        "differ from fp32 by a few levels, so regenerate such items with the same precision",
    )
    channels_last: Literal["auto"] | bool = Field(
        "auto", exclude=True, description="NHWC activations; auto = on CUDA only"
    )
    compile: bool = Field(False, exclude=True, description="torch.compile the generator (slow first batch)")
    encode_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        exclude=True,
        description="threads encoding images; null = one per CPU of the replica",
    )


class GenerateConfig(RunResources):
    FIELD_ORDER: ClassVar[tuple[str, ...]] = (
        "kind",
        "model",
        "output",
        "count",
        "seed",
        "replicas",
        "shard_size",
        "batch_size",
        "truncation",
        "cpus_per_replica",
        "gpus_per_replica",
        "max_in_flight",
        "max_retries",
        "shard_timeout_s",
        "in_process_below_s",
        "filter",
        "dedupe",
        "image",
        "layout",
        "classes",
        "market",
        "storage",
        "address",
        "inference",
        "variations",
        "provenance",
    )

    kind: Literal["generate"]
    model: str = Field(description="URI of a model bundle (a folder with model.safetensors + model.json)")
    output: str = Field(description="URI of the output folder (local path, file://, s3://)")
    count: int = Field(1000, ge=1, le=10**10)
    seed: Seed = 0
    shard_size: int = Field(1000, ge=1, le=10**7)
    truncation: float | None = Field(None, gt=0, description="clip latents to [-t, t]; null = off")
    max_in_flight: int = Field(2, ge=1, le=64, description="shards queued per replica (bounds memory)")
    max_retries: int = Field(3, ge=0, le=100, description="attempts per shard after a replica dies")
    shard_timeout_s: float = Field(
        600.0,
        gt=0,
        le=7 * 86400,
        description="a replica that commits nothing for this long is hung: killed and replaced",
    )
    in_process_below_s: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="with no cluster to join (no address, no RAY_ADDRESS, no `genart up`), a CPU job whose "
        "pending items are estimated to take less than this many seconds runs in this process instead of "
        "starting a local Ray (whose start costs seconds); 0 = always start Ray",
    )
    # filters and inference are left out of _job.json and its hash while off (genart.config.identity's
    # record_exclude), so jobs written before they existed keep their config_hash
    filter: GenerateFilter = Field(default_factory=GenerateFilter)
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    layout: Literal["files", "webdataset", "parquet"] = "files"
    classes: ClassesConfig = Field(default_factory=ClassesConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    # left out of _job.json and its hash at its default (record_exclude), so outputs made before images
    # carried XMP still resume (the shards a resume writes carry it)
    provenance: ProvenanceConfig = Field(default_factory=ProvenanceConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    variations: VariationsConfig | None = Field(
        None, description="children around (and between) the kept pieces of another output; null = off"
    )
    # synthesize's candidate rounds: what the replicas measure per item as extra columns (a
    # genart.filters.measure.Measures, holding the driver's fitted scorers). Private, so never a config key,
    # never in _job.json or the job's identity; it travels to the replicas with the config object.
    _measures: Any = PrivateAttr(None)

    def with_measures(self, measures) -> GenerateConfig:
        """A copy whose replicas record `measures` (a genart.filters.measure.Measures, or None) as columns."""
        out = self.model_copy()
        out._measures = measures
        return out

    @property
    def measures(self):
        """The Measures `with_measures` set, or None (every job but synthesize's candidate rounds)."""
        return self._measures

    @model_validator(mode="after")
    def _shards_fit(self) -> GenerateConfig:
        shards = num_shards(self.count, self.shard_size)
        if shards > MAX_SHARDS:
            raise ValueError(
                f"count {self.count} in shards of {self.shard_size} makes {shards} shards, more than the "
                f"{MAX_SHARDS} the int32 `shard` column holds; raise shard_size"
            )
        return self

    @model_validator(mode="after")
    def _children_fit(self) -> GenerateConfig:
        filtered = self.filter.min_score is not None or self.dedupe.max_distance is not None
        if filtered and (self.variations is not None or self.classes.blend):
            what = "variations" if self.variations is not None else "classes.blend"
            raise ValueError(
                f"{what} cannot be combined with filter.min_score or dedupe.max_distance yet (redraws "
                "would not keep the children's latents); set them null"
            )
        default = ClassesConfig()
        if self.variations is not None and self.variations.keep_class and self.classes != default:
            raise ValueError(
                "variations.keep_class is true (children keep their parents' classes), so the job's classes "
                "block would be ignored: remove it, or set variations.keep_class: false to use it"
            )
        return self

    @model_validator(mode="after")
    def _market_needs_files(self) -> GenerateConfig:
        if self.market.standard == "opensea" and self.layout != "files":
            raise ValueError(
                f"market.standard: opensea needs layout: files (each token's image is a file at "
                f"market.base_uri + its path); got layout: {self.layout}"
            )
        return self


def _listed(names: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def class_id_of(ref: int | str, names: Sequence[str] | None, key: str, of: str = "this model") -> int:
    """A class given by id or name as its id: an int as is; a string that is one of `names` -> its index; else
    a decimal string -> that number (ids keep working whatever the names). Raises ConfigError naming `key`
    (and listing the names) for any other string, or for any string when `names` is empty or None."""
    if isinstance(ref, int):
        return ref
    names = list(names or ())
    if ref in names:
        return names.index(ref)
    if re.fullmatch(r"-?[0-9]+", ref):
        return int(ref)
    if not names:
        raise ConfigError(f"{key}: {ref!r} names a class, but {of} has no class names")
    raise ConfigError(f"{key}: {ref!r} is not a class of {of}; its classes are {_listed(names)}")


def blend_table(blend: dict) -> dict[int, float]:
    """classes.blend with its keys as class ids: {int: weight}. Keys are ids once the job resolved its names
    (resolve_class_names); _job.json read back holds them as decimal strings. Raises ConfigError for a key
    that is still a class name."""
    return {class_id_of(k, None, "classes.blend"): w for k, w in blend.items()}


def keyed_by_class_id(mapping: dict, names: Sequence[str] | None, key: str) -> dict:
    """`mapping` ({class id or name: value}) with every key as its class id (class_id_of), order kept.
    Raises ConfigError naming `key` as class_id_of does, or when two keys name one class."""
    out: dict = {}
    for ref, value in mapping.items():
        k = class_id_of(ref, names, key)
        if k in out:
            raise ConfigError(f"{key}: class {k} ({ref!r}) is given twice; give each class once")
        out[k] = value
    return out


def resolve_class_names(
    cfg: GenerateConfig, class_names: Sequence[str] | None, num_classes: int | None = None
) -> GenerateConfig:
    """`cfg` with each class name in classes.ids and classes.blend replaced by its index in `class_names` (the
    bundle's; None for an unconditional model); `cfg` itself when both hold ids only, so id-based jobs keep
    their bytes and identity. A string that is no name but a decimal number stays the id it always was.
    Raises ConfigError naming the key and listing the valid names for any other string; for classes.blend on
    a model whose `num_classes` is 0 (unconditional); and for a blend naming one class twice."""
    ids, blend = cfg.classes.ids, cfg.classes.blend
    if blend and num_classes == 0:
        raise ConfigError(
            "classes.blend: this model is unconditional (model.json num_classes 0), it has no classes to "
            "blend; remove classes.blend or use a class-conditional model"
        )
    if all(isinstance(c, int) for c in [*ids, *blend]):
        return cfg
    out = [class_id_of(c, class_names, "classes.ids") for c in ids]
    mixed = keyed_by_class_id(blend, class_names, "classes.blend")
    return cfg.model_copy(update={"classes": cfg.classes.model_copy(update={"ids": out, "blend": mixed})})
