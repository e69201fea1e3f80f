"""Schema of `kind: train` configs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from genart.config.common import StorageOptions, Strict

# the model keys a generator spec (model.json `generator`) records per arch; plain data, so a bundle's
# description is checked without importing torch
GENERATOR_KEYS = {
    "dcgan": ("image_size", "channels", "latent_dim", "num_classes", "g_width", "attention"),
    "vae": ("image_size", "channels", "latent_dim", "num_classes", "width"),
}

ImageSize = Literal[32, 64, 128, 256]
Channels = Literal[1, 3, 4]  # grey, RGB, RGBA (4 keeps the alpha channel: transparent PNG/WebP out)
AUGMENT_OPS = ("color", "translation", "cutout")  # DiffAugment ops (genart/training/augment.py)


class GanModelConfig(Strict):
    """DCGAN-style generator and discriminator, optionally with self-attention and classes."""

    arch: Literal["dcgan"] = "dcgan"
    image_size: ImageSize = 32
    channels: Channels = 1
    latent_dim: int = Field(64, ge=2, le=1024)
    num_classes: int = Field(0, ge=0, le=10000, description="0 = unconditional")
    g_width: int = Field(64, ge=8, le=1024, description="channels of G's last feature map")
    d_width: int = Field(64, ge=8, le=1024, description="channels of D's first feature map")
    attention: bool = Field(False, description="SAGAN self-attention block in G and D")
    spectral_norm: bool = Field(True, description="spectral norm on D's layers")
    loss: Literal["nonsaturating", "hinge"] = "hinge"


class VaeModelConfig(Strict):
    """Convolutional VAE, optionally class-conditional; loss = reconstruction + beta * KL."""

    arch: Literal["vae"] = "vae"
    image_size: ImageSize = 32
    channels: Channels = 1
    latent_dim: int = Field(32, ge=2, le=1024)
    num_classes: int = Field(0, ge=0, le=10000)
    width: int = Field(32, ge=8, le=1024)
    beta: float = Field(1.0, ge=0.0)


ModelConfig = Annotated[GanModelConfig | VaeModelConfig, Field(discriminator="arch")]


class DataConfig(Strict):
    source: str = Field("digits", description="`digits`, or a URI of an image folder/glob or Parquet")
    image_column: str = "image"
    label_column: str | None = Field(
        "label", description="label column of Parquet or metadata.csv/.jsonl; null for unlabelled"
    )
    background: str | tuple[int, int, int] = Field(
        "white", description="what transparency and pad margins become: a colour name, #rrggbb or [r, g, b]"
    )
    fit: Literal["crop", "pad"] = Field(
        "crop", description="crop: the centred square; pad: the whole image, margins in the background colour"
    )

    @field_validator("background")
    @classmethod
    def _is_a_colour(cls, value):
        parse_colour(value)
        return value

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return parse_colour(self.background)


def parse_colour(value) -> tuple[int, int, int]:
    """'white', '#rrggbb', 'rgb(…)' or [r, g, b] (0..255 each) -> (r, g, b). Raises ValueError saying what is allowed."""
    if isinstance(value, (tuple, list)):
        if len(value) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
            return tuple(int(v) for v in value)
    elif isinstance(value, str):
        from PIL import ImageColor

        try:
            return ImageColor.getrgb(value)[:3]
        except ValueError:
            pass
    raise ValueError("expected a colour name (white), #rrggbb or [r, g, b] with values 0..255")


class TrainLoopConfig(Strict):
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(64, ge=1, description="per worker")
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    ema_start: int = Field(100, ge=0, description="steps before the EMA starts tracking G")
    checkpoint_every: int = Field(500, ge=1)
    log_every: int = Field(50, ge=1)
    seed: int = 0
    augment: str = Field(
        "",
        description="DiffAugment policy for what D sees (GAN only): comma-separated or a list of "
        "color, translation, cutout; empty = off",
    )

    @field_validator("augment", mode="before")
    @classmethod
    def _policy(cls, value) -> str:
        return augment_policy(value)


def augment_policy(value) -> str:
    """`train.augment` as given (a string `a,b` or a list of names; None/"" = off) -> the canonical
    comma-joined string, order kept. Raises ValueError naming the unknown or repeated op."""
    if value is None:
        return ""
    if isinstance(value, str):
        names = [p.strip() for p in value.split(",")] if value.strip() else []
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise ValueError(f"expected a string or a list of op names from {', '.join(AUGMENT_OPS)}")
    for name in names:
        if name not in AUGMENT_OPS:
            raise ValueError(f"unknown op {name!r}; allowed: {', '.join(AUGMENT_OPS)} (comma-separated)")
    if len(set(names)) != len(names):
        raise ValueError(f"an op is listed twice in {','.join(names)!r}")
    return ",".join(names)


class ScalingConfig(Strict):
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(0.5, gt=0, description="leave CPU room for Ray Data's tasks")
    gpus_per_worker: float = Field(1.0, ge=0)
    threads_per_worker: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch intra-op threads per worker; default: the CPUs this process may use divided by the "
        "workers on its node (cpus_per_worker only reserves room in Ray's scheduler)",
    )
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_SPREAD"] = Field(
        "PACK", description="SPREAD puts workers on different nodes where it can"
    )


class TrainConfig(Strict):
    kind: Literal["train"]
    output: str = Field(description="URI: checkpoints, metrics, samples and the bundle at output/model")
    model: ModelConfig = Field(default_factory=GanModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainLoopConfig = Field(default_factory=TrainLoopConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    storage: StorageOptions = Field(default_factory=StorageOptions)
    address: str | None = Field(None, description="Ray address to join; null starts a local Ray")

    @model_validator(mode="after")
    def _augment_needs_gan(self) -> TrainConfig:
        if self.train.augment and self.model.arch != "dcgan":
            raise ValueError(
                f"train.augment: DiffAugment augments what a GAN's discriminator sees; model.arch "
                f"{self.model.arch} has no discriminator: leave train.augment empty (got {self.train.augment!r})"
            )
        return self

    @model_validator(mode="after")
    def _checkpoint_fits(self) -> TrainConfig:
        if self.train.checkpoint_every > self.train.steps:
            self.train.checkpoint_every = self.train.steps
        return self
