"""Packed layouts: a shard's items in one object instead of one object each. Plain functions, no IO.

`webdataset`: one uncompressed tar per shard holding `{key}.{ext}` and `{key}.json` per item (key = the
zero-padded id), members in id order: what `webdataset.WebDataset` and `ray.data.read_webdataset` read.
`parquet`: the image bytes go into the metadata Parquet's `image` column, the Hugging Face Image struct
{bytes: binary, path: string}; `class_id` is int64 there (the type `datasets`' ClassLabel needs) and the
schema carries the `huggingface` metadata (storage/hf.py), so `datasets.load_dataset("parquet", ...)`
decodes `image` as PIL and `class_id` with the bundle's class names.
"""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa

from genart.storage import hf, layout
from genart.storage.hf import IMAGE_TYPE

# what the json member of an item holds (the Parquet row minus the columns shared by the whole shard)
ITEM_JSON_KEYS = (
    "id",
    "seed",
    "class_id",
    "sha256",
    "width",
    "height",
    "format",
    "shard",
    "model_id",
    "job_id",
)


def schema_for(base: pa.Schema, layout_name: str, class_names=None) -> pa.Schema:
    """The metadata Parquet schema of a layout: the contract's columns; for `parquet` also `image`, with
    `class_id` widened to int64 and the `huggingface` features (Image; ClassLabel named `class_names`,
    given for conditional models) in the schema metadata. Readers compare it without metadata."""
    if layout_name != "parquet":
        return base
    i = base.get_field_index("class_id")
    schema = base.set(i, pa.field("class_id", pa.int64())).append(pa.field("image", IMAGE_TYPE))
    features = {"image": hf.IMAGE}
    if class_names:
        features["class_id"] = hf.class_label(class_names)
    return schema.with_metadata(hf.schema_metadata(features))


def item_json(row: dict) -> bytes:
    return json.dumps({k: row[k] for k in ITEM_JSON_KEYS}, sort_keys=True).encode()


def build_tar(members: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of (name, bytes) in the given order; fixed mtime/owner, so a retry writes the same
    bytes for the same content."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uname = info.gname = "genart"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def shard_tar(rows: list[dict], blobs: dict[int, bytes], fmt: str) -> bytes:
    """The webdataset tar of one shard: per row (in id order), the image then its json."""
    members: list[tuple[str, bytes]] = []
    for row in rows:
        members.append((layout.member_name(row["id"], fmt), blobs[row["id"]]))
        members.append((f"{layout.item_key(row['id'])}.json", item_json(row)))
    return build_tar(members)


def read_tar(data: bytes, odd: list[str] | None = None) -> dict[str, bytes]:
    """Member name -> bytes of a tar held in memory (regular files only). `odd`, when given, collects what
    readers would see differently: a name held by more than one member (streaming readers such as
    webdataset see the first or fail; the dict keeps the last) and members that are not regular files
    (links, folders, devices)."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            if not info.isfile():
                if odd is not None:
                    odd.append(f"member {info.name} is not a regular file")
                continue
            if odd is not None and info.name in out:
                odd.append(f"member {info.name} appears more than once")
            f = tar.extractfile(info)
            out[info.name] = f.read() if f is not None else b""
    return out
