"""Every path rule of a generation output, relative to the job's `output` URI. Names are deterministic,
so a retried shard overwrites the same keys.

    _job.json                              resolved config, its hash, model_id, genart version, job_id
    images/{shard:05d}/{id:010d}.{ext}     layout `files`: one file per item, grouped by shard
    shards/{shard:05d}.tar                 layout `webdataset`: {id:010d}.{ext} + {id:010d}.json per item
    metadata/part-{shard:05d}.parquet      one per shard in every layout, written after its images: the
                                           commit (layout `parquet`: the image bytes are its `image` column)
    _SUCCESS                               JSON totals, written last
    tokens/{id}.json                       `market.standard: opensea`: one per item, before its shard's commit
    tokens/_traits/part-{shard:05d}.json   `market.standard: opensea`: the shard's trait counts, before its commit
    collection.json                        `market.standard: opensea`: the rarity table, before _SUCCESS

The metadata `path` column is relative to the output in layout `files`; in `webdataset` and `parquet`
it names the item inside its shard (the tar member, or the `image.path` of the row).
"""

from __future__ import annotations

import re

JOB = "_job.json"
SUCCESS = "_SUCCESS"
PROGRESS = "_progress.json"  # the driver's byte ledger while a job runs (generation/ledger.py)
IMAGES_DIR = "images"
METADATA_DIR = "metadata"
SHARDS_DIR = "shards"
TOKENS_DIR = "tokens"
COLLECTION = "collection.json"
TRAITS_DIR = f"{TOKENS_DIR}/_traits"  # per-shard trait counts that collection.json sums
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
LAYOUTS = ("files", "webdataset", "parquet")

_PART = re.compile(r"^part-(\d{5,})\.parquet$")
_SHARD_DIR = re.compile(r"^(\d{5,})$")
_TRAITS_PART = re.compile(r"^part-(\d{5,})\.json$")
_PART_TEMP = re.compile(r"^\.part-\d{5,}\.parquet\.[0-9a-f]{1,64}\.tmp$")  # temp_name of a metadata part


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


TOKEN_SUFFIXES = (".json", "")  # market.token_suffix's values; ".json" is the default


def token_path(item_id: int, suffix: str = ".json") -> str:
    """An item's OpenSea token file, relative to the output: tokens/{id}{suffix}. `suffix` "" gives what a
    stock ERC-721 contract's tokenURI (baseURI + tokenId) names. Raises ValueError for another suffix."""
    if suffix not in TOKEN_SUFFIXES:
        raise ValueError(f"token suffix {suffix!r} is not one of {TOKEN_SUFFIXES}")
    return f"{TOKENS_DIR}/{int(item_id)}{suffix}"


def traits_summary_path(shard: int) -> str:
    """The shard's trait-count summary: {trait_type: {value: count}} and its item count."""
    return f"{TRAITS_DIR}/part-{shard:05d}.json"


def parse_traits_summary_name(name: str) -> int | None:
    """`part-00012.json` (or a path ending in it) -> 12; anything else -> None."""
    m = _TRAITS_PART.match(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def parse_metadata_name(name: str) -> int | None:
    """`part-00012.parquet` (or a path ending in it) -> 12; anything else (temp files, ...) -> None."""
    m = _PART.match(name.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def item_key(item_id: int) -> str:
    """The WebDataset key of an item: its zero-padded id (members `{key}.png`, `{key}.json`)."""
    return f"{item_id:010d}"


def member_name(item_id: int, fmt: str) -> str:
    return f"{item_key(item_id)}.{extension(fmt)}"


def tar_name(shard: int) -> str:
    return f"{shard:05d}.tar"


def tar_path(shard: int) -> str:
    return f"{SHARDS_DIR}/{tar_name(shard)}"


def item_path(layout: str, shard: int, item_id: int, fmt: str) -> str:
    """The `path` column: relative to the output for `files`, the item's name inside its shard otherwise."""
    if layout == "files":
        return image_path(shard, item_id, fmt)
    return member_name(item_id, fmt)


def stray_image_names(names, shard: int, expected: set[str]) -> list[str]:
    """Entries of images/{shard:05d}/ (names or paths ending in them) that are not `expected` file names."""
    return sorted(n for n in names if n.rsplit("/", 1)[-1] not in expected)


def parse_shard_dir(name: str) -> int | None:
    """`00012` (or a path ending in it) -> 12, the images/ folder of shard 12; anything else -> None."""
    m = _SHARD_DIR.match(name.rstrip("/").rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def check_item_path(layout: str, shard: int, item_id: int, fmt: str, path) -> str:
    """The layout's path for the item; raises ValueError when `path` (a metadata row's) is anything else, so
    a row can never name a file outside its output (`../x.png`, `/abs/x.png`, another item's file)."""
    want = item_path(layout, shard, item_id, fmt)
    if path != want:
        raise ValueError(f"id {item_id}: path {path!r} is not the layout's {want!r}")
    return want


def temp_name(final_name: str, token: str) -> str:
    """A hidden temp name beside `final_name` for an atomic write (never parsed as a committed shard)."""
    return f".{final_name}.{token}.tmp"


def is_metadata_name(name: str) -> bool:
    """Whether `name` (or a path ending in it) is one genart writes in metadata/: a committed part or the
    temp file of a part's commit (temp_name with a hex token; the writer removes them on resume)."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return parse_metadata_name(base) is not None or _PART_TEMP.match(base) is not None
