"""Writing a synthesized dataset: data/{split}-NNNNN-of-MMMMM.parquet (Hugging Face Hub naming). No Ray.

The schema carries the `huggingface` key-value metadata that `datasets` itself writes, so
`datasets.load_dataset("parquet", data_dir=OUTPUT)` decodes `image` and names `label` without extra code,
while pyarrow, pandas, duckdb and Ray Data see plain columns (a {bytes, path} struct, integers, floats).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from genart.ids import num_shards
from genart.storage import hf
from genart.storage.fs import exists, join, remove
from genart.storage.hf import IMAGE_TYPE
from genart.storage.retry import retry

DATA_DIR = "data"
README = "README.md"
SAMPLES = "samples.png"
SUCCESS = "_SUCCESS"
CANDIDATES_DIR = "_candidates"


def shard_name(split: str, k: int, total: int) -> str:
    return f"{DATA_DIR}/{split}-{k:05d}-of-{total:05d}.parquet"


def hf_features(class_names: list[str], with_score: bool) -> dict:
    """The `features` dict of the `huggingface` schema metadata, as `datasets.Features.to_dict` writes it."""
    feats = {
        "image": hf.IMAGE,
        "label": hf.class_label(class_names),
        "id": hf.value("int64"),
        "seed": hf.value("int64"),
        "phash": hf.value("uint64"),
    }
    if with_score:
        feats["score"] = hf.value("float32")
    return feats


def dataset_schema(class_names: list[str], with_score: bool) -> pa.Schema:
    fields = [
        ("image", IMAGE_TYPE),
        ("label", pa.int64()),
        ("id", pa.int64()),
        ("seed", pa.int64()),
        ("phash", pa.uint64()),
    ]
    if with_score:
        fields.append(("score", pa.float32()))
    return pa.schema(fields, metadata=hf.schema_metadata(hf_features(class_names, with_score)))


def to_table(rows: list[dict], blobs: list[bytes], schema: pa.Schema) -> pa.Table:
    cols = {
        "image": pa.StructArray.from_arrays(
            [
                pa.array(blobs, pa.binary()),
                pa.array([f"{r['id']:010d}.png" for r in rows]),
            ],
            fields=list(IMAGE_TYPE),
        ),
        "label": pa.array([r["label"] for r in rows], pa.int64()),
        "id": pa.array([r["id"] for r in rows], pa.int64()),
        "seed": pa.array([r["seed"] for r in rows], pa.int64()),
        "phash": pa.array([r["phash"] for r in rows], pa.uint64()),
    }
    if "score" in schema.names:
        cols["score"] = pa.array([r["score"] for r in rows], pa.float32())
    return pa.table(cols, schema=schema)


def write_splits(
    fs, root: str, split_rows: dict[str, list[dict]], schema: pa.Schema, shard_size: int, blobs: Iterable
) -> dict:
    """Replace data/ with the splits' shards (rows in id order); returns split -> list of file names.

    `blobs` yields (id, encoded image) of every row in ascending id order: each split's files are filled in
    id order, so one pass writes them all while holding at most one file's images per split."""
    data_dir = join(root, DATA_DIR)
    if exists(fs, data_dir):
        remove(fs, data_dir, f"{DATA_DIR}/ (the splits are rewritten)")
    fs.makedirs(data_dir, exist_ok=True)
    split_of = {r["id"]: s for s, rows in split_rows.items() for r in rows}
    totals = {s: num_shards(len(rows), shard_size) for s, rows in split_rows.items() if rows}
    files: dict[str, list[str]] = {s: [] for s in totals}
    pending: dict[str, list[bytes]] = {s: [] for s in totals}

    def flush(split: str) -> None:
        k = len(files[split])
        rows = split_rows[split][k * shard_size : k * shard_size + len(pending[split])]
        sink = pa.BufferOutputStream()
        pq.write_table(to_table(rows, pending[split], schema), sink)
        rel = shard_name(split, k, totals[split])
        blob = sink.getvalue().to_pybytes()
        retry(lambda: fs.pipe_file(join(root, rel), blob), f"writing {rel}")
        files[split].append(rel)
        pending[split] = []

    for i, data in blobs:
        split = split_of[i]
        if split_rows[split][len(files[split]) * shard_size + len(pending[split])]["id"] != i:
            raise AssertionError(f"images must come in id order (got id {i} out of order)")
        pending[split].append(data)
        if len(pending[split]) == shard_size:
            flush(split)
    for split in totals:
        if pending[split]:
            flush(split)
        if len(files[split]) != totals[split]:
            raise AssertionError(f"{split}: wrote {len(files[split])} of {totals[split]} files")
    return files
