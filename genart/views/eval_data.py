"""Which real images `genart eval --data CONFIG|SOURCE` compares against. Plain Python (no Ray).

`--data digits` keeps eval's SVC judge. A `kind: train` config (a .yaml/.yml file) gives its data.source,
model.image_size and model.channels (and the reading options its data section has); any other value is a
data source read at the bundle's image size and channels through `genart.data.read.read_images`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from genart.errors import ConfigError
from genart.storage.fs import redact
from genart.views.judge_report import MAX_REAL, RealData

CONFIG_SUFFIXES = (".yaml", ".yml")
# read_images' keyword options a train config's `data` section may set (those it has are passed on)
READ_OPTIONS = ("fit", "background", "label_column", "image_column")


@dataclass(frozen=True)
class DataSpec:
    """What to read: the source URI, the side and channels to decode to, read_images' keyword options."""

    source: str
    image_size: int
    channels: int
    options: dict = field(default_factory=dict)
    storage_options: dict | None = None

    @property
    def where(self) -> str:
        return redact(self.source)


def check_data_arg(data: str) -> str:
    """`data` unchanged when it can be a source: digits, a URI, an existing local path. Raises ConfigError
    naming --data for a local path that does not exist (checked before the bundle is loaded)."""
    if data == "digits" or "://" in data or os.path.exists(data):
        return data
    raise ConfigError(
        f"--data {data}: no such train config or data source; pass digits, a `kind: train` config, "
        "a folder with one subfolder per class, or a Parquet file/folder URI"
    )


def data_spec(data: str, meta: dict) -> DataSpec | None:
    """The DataSpec of `data` (None for digits, also when a train config's data.source is digits).
    Raises ConfigError for a config file that is not a valid `kind: train` config."""
    if data == "digits":
        return None
    if data.endswith(CONFIG_SUFFIXES) and os.path.isfile(data):
        from genart.config import load_config

        cfg = load_config(data, (), expect_kind="train")
        if cfg.data.source == "digits":
            return None
        fields = type(cfg.data).model_fields
        options = {k: getattr(cfg.data, k) for k in READ_OPTIONS if k in fields}
        return DataSpec(
            cfg.data.source, cfg.model.image_size, cfg.model.channels, options, cfg.storage.options or None
        )
    return DataSpec(data, meta["image_size"], meta["channels"])


def read_real(spec: DataSpec) -> RealData:
    """The labelled real images of `spec`, read by genart.data.read.read_images (its errors as they come): a
    seeded random MAX_REAL of them when the source lists more, picked before anything is fetched, so a
    collection of millions costs the judge's share of memory only. Raises DataError for unlabelled data."""
    from genart.data import read  # genart.data.read (imported here: digits never need it)

    image_set = read.read_images(
        spec.source,
        spec.image_size,
        spec.channels,
        storage_options=spec.storage_options,
        sample=MAX_REAL,
        **spec.options,
    )
    return RealData.of(image_set)
