"""Every path rule of a generation output, relative to the job's `output` URI. Names are deterministic,
so a retried shard overwrites the same keys.

    _job.json                              resolved config, its hash, model_id, genart version, job_id
    images/{shard:05d}/{id:010d}.{ext}     layout `files`: one file per item, grouped by shard
    metadata/part-{shard:05d}.parquet      one per shard, written after its images: the commit
    _SUCCESS                               JSON totals, written last
"""

from __future__ import annotations

import re

JOB = "_job.json"
SUCCESS = "_SUCCESS"
IMAGES_DIR = "images"
METADATA_DIR = "metadata"
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
LAYOUTS = ("files",)  # webdataset (shards/NNNNN.tar) and parquet (image column) slot in here

_PART = re.compile(r"^part-(\d{5,})\.parquet$")


def extension(fmt: str) -> str:
    return EXTENSIONS[fmt]


def shard_dir(shard: int) -> str:
    return f"{IMAGES_DIR}/{shard:05d}"


def image_path(shard: int, item_id: int, fmt: str) -> str:
    return f"{shard_dir(shard)}/{item_id:010d}.{extension(fmt)}"


def metadata_name(shard: int) -> str:
    return f"part-{shard:05d}.parquet"


def metadata_path(shard: int) -> str:
    return f"{METADATA_DIR}/{metadata_name(shard)}"


def parse_metadata_name(name: str) -> int | None:
    """`part-00012.parquet` (or a path ending in it) -> 12; anything else (temp files, ...) -> None."""
    m = _PART.match(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None
