"""`layout: parquet` and synthesize outputs read by the real Hugging Face `datasets` library. No Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genart.images import Batch, decode, encode
from genart.storage import packing
from genart.storage.commit import SCHEMA, ShardFormat, ShardWriter
from genart.storage.hf import class_names_of
from genart.storage.output import Output
from genart.synthesis.write import dataset_schema

datasets = pytest.importorskip("datasets")
NAMES = ("zero", "one", "two")


def _write_parquet_shard(root, class_names, n=6):
    shard_format = ShardFormat("job-1", "m" * 64, "png", layout="parquet", class_names=class_names)
    w = ShardWriter(Output.open(str(root)), shard_format)
    ids = np.arange(n, dtype=np.int64)
    imgs = np.random.default_rng(0).integers(0, 256, size=(n, 8, 6, 3), dtype=np.uint8)
    blobs = [encode(im) for im in imgs]
    cls = (ids % 3).astype(np.int32) if class_names else None
    out = w.open_shard(0)
    out.add(Batch(ids, ids * 7 + 1, cls, imgs, blobs=blobs))
    out.commit()
    return imgs, blobs


def _load(path, cache):
    return datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(cache))


def test_parquet_layout_decodes_images_and_class_labels(tmp_path):
    imgs, blobs = _write_parquet_shard(tmp_path / "out", NAMES)
    part = tmp_path / "out/metadata/part-00000.parquet"
    ds = _load(part, tmp_path / "cache")
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["class_id"], datasets.ClassLabel)
    assert ds.features["class_id"].names == list(NAMES)
    assert ds.features["id"] == datasets.Value("int64")
    assert ds.num_rows == 6 and ds["class_id"] == [0, 1, 2, 0, 1, 2]
    for i in (0, 4):
        row = ds[i]
        assert row["image"].size == (6, 8) and row["image"].mode == "RGB"
        pixels = np.asarray(row["image"])
        assert np.array_equal(pixels, decode(blobs[i])) and np.array_equal(pixels, imgs[i])
        assert ds.features["class_id"].int2str(row["class_id"]) == NAMES[i % 3]
    # the file's schema is still the contract's columns (class_id widened to int64) for every other reader
    schema = pq.read_schema(part)
    assert schema.field("class_id").type == pa.int64()
    assert schema.names == [f.name for f in SCHEMA] + ["image"]
    assert b"genart.bytes" in schema.metadata  # the byte total is kept beside the features


def test_parquet_layout_unconditional_has_image_feature_only(tmp_path):
    _, blobs = _write_parquet_shard(tmp_path / "out", None, n=3)
    ds = _load(tmp_path / "out/metadata/part-00000.parquet", tmp_path / "cache")
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["class_id"] == datasets.Value("int64") and ds["class_id"] == [None] * 3
    assert np.array_equal(np.asarray(ds[2]["image"]), decode(blobs[2]))


def test_other_layouts_keep_the_plain_contract_schema():
    for name in ("files", "webdataset"):
        assert packing.schema_for(SCHEMA, name, NAMES) is SCHEMA


def test_class_names_of_bundle_meta():
    assert class_names_of({"num_classes": 3, "class_names": ["a", "b", "c"]}) == ("a", "b", "c")
    assert class_names_of({"num_classes": 2}) == ("0", "1")
    assert class_names_of({"num_classes": 0}) is None and class_names_of({}) is None


def test_synthesize_schema_metadata_bytes_unchanged():
    """Synthesize shares the feature helpers; its `huggingface` metadata keeps the exact bytes it had."""
    want = {
        "info": {
            "features": {
                "image": {"_type": "Image"},
                "label": {"names": ["a", "b"], "_type": "ClassLabel"},
                "id": {"dtype": "int64", "_type": "Value"},
                "seed": {"dtype": "int64", "_type": "Value"},
                "phash": {"dtype": "uint64", "_type": "Value"},
                "score": {"dtype": "float32", "_type": "Value"},
            }
        }
    }
    assert dataset_schema(["a", "b"], with_score=True).metadata[b"huggingface"] == json.dumps(want).encode()
