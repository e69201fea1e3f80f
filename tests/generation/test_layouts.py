"""Layouts `webdataset` and `parquet` with a real 2-CPU local Ray and 2 replicas: read back by independent
readers (the webdataset library, Ray Data's read_webdataset, pyarrow), resumed exactly once, verified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import genart
from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.images import decode, sha256_hex


def _resume_after_losing_shard_2(cfg, out: Path, first: dict, packed: Path | None) -> None:
    """An interrupted job (no _SUCCESS, shard 2 uncommitted): the re-run regenerates shard 2 only."""
    (out / "_SUCCESS").unlink()
    (out / "metadata/part-00002.parquet").unlink()
    others = {
        p.name: p.stat().st_mtime_ns for p in (packed or out / "metadata").iterdir() if "00002" not in p.name
    }
    again = generate(cfg, progress=False)
    assert (again.generated, again.resumed_shards, again.bytes) == (200, 4, first.bytes)
    assert {
        p.name: p.stat().st_mtime_ns for p in (packed or out / "metadata").iterdir() if p.name in others
    } == others
    ids = pq.read_table(out / "metadata", columns=["id"]).column("id").to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(1000))
    assert verify(str(out)) == []


def test_webdataset_layout(ray_local, tiny_bundle, tmp_path, make_cfg):
    import ray
    import webdataset as wds

    out = tmp_path / "out"
    cfg = make_cfg(tiny_bundle, str(out), count=1000, shard_size=200, layout="webdataset")
    first = generate(cfg, progress=False)
    assert (first.generated, first.shards) == (1000, 5)
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "_job.json", "metadata", "shards"]
    tars = sorted(str(p) for p in (out / "shards").iterdir())
    assert [Path(t).name for t in tars] == [f"{k:05d}.tar" for k in range(5)]
    assert sum(Path(t).stat().st_size for t in tars) > first.bytes  # images + json + tar headers
    assert verify(str(out)) == []

    rows = {r["id"]: r for r in pq.read_table(out / "metadata").to_pylist()}
    samples = list(wds.WebDataset(tars, shardshuffle=False))  # the webdataset library
    assert [s["__key__"] for s in samples] == [f"{i:010d}" for i in range(1000)]
    for s in samples:
        item, row = json.loads(s["json"]), rows[int(s["__key__"])]
        assert sha256_hex(s["png"]) == row["sha256"] == item["sha256"]
        assert (item["seed"], item["class_id"], item["shard"]) == (row["seed"], row["class_id"], row["shard"])

    ds = ray.data.read_webdataset(str(out / "shards"), decoder=None)  # Ray Data, bytes as stored
    got = ds.select_columns(["__key__", "png"]).take_all()
    assert sorted(r["__key__"] for r in got) == [f"{i:010d}" for i in range(1000)]
    bundle = genart.load_bundle(tiny_bundle)
    for r in got[:3]:
        row = rows[int(r["__key__"])]
        assert sha256_hex(r["png"]) == row["sha256"]
        again = bundle.generate([row["seed"]], [row["class_id"]])[0]
        assert np.abs(decode(r["png"]).astype(int) - again.astype(int)).max() <= 1

    _resume_after_losing_shard_2(cfg, out, first, out / "shards")


def test_parquet_layout(ray_local, tiny_bundle, tmp_path, make_cfg):
    out = tmp_path / "out"
    cfg = make_cfg(tiny_bundle, str(out), count=1000, shard_size=200, layout="parquet")
    first = generate(cfg, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "_job.json", "metadata"]
    table = pq.read_table(out / "metadata").sort_by("id")  # pyarrow, as any Parquet reader
    assert table.num_rows == 1000 and table.column("id").to_pylist() == list(range(1000))
    images = table.column("image").to_pylist()
    assert [im["path"] for im in images] == [f"{i:010d}.png" for i in range(1000)]
    assert [sha256_hex(im["bytes"]) for im in images] == table.column("sha256").to_pylist()
    assert sum(len(im["bytes"]) for im in images) == first.bytes
    row = table.slice(321, 1).to_pylist()[0]
    again = genart.load_bundle(tiny_bundle).generate([row["seed"]], [row["class_id"]])[0]
    assert np.abs(decode(row["image"]["bytes"]).astype(int) - again.astype(int)).max() <= 1
    assert verify(str(out)) == []
    # the Hugging Face `datasets` library decodes the image (PIL) and names the class (the bundle's names)
    import datasets

    ds = datasets.load_dataset(
        "parquet", data_files=str(out / "metadata/*.parquet"), split="train", cache_dir=str(tmp_path / "hf")
    )
    meta = genart.load_bundle(tiny_bundle).meta
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["class_id"].names == [
        str(n) for n in meta.get("class_names") or range(meta["num_classes"])
    ]
    hf_row = ds.sort("id")[321]
    assert np.array_equal(np.asarray(hf_row["image"]).reshape(decode(row["image"]["bytes"]).shape),
                          decode(row["image"]["bytes"]))  # fmt: skip
    # a part written before class_id became int64 (genart 0.1.0 wrote int32) still verifies; another type not
    part0 = out / "metadata/part-00000.parquet"
    original = part0.read_bytes()
    t = pq.read_table(part0)
    i = t.schema.get_field_index("class_id")
    for typ, ok in ((pa.int32(), True), (pa.int16(), False)):
        pq.write_table(t.set_column(i, pa.field("class_id", typ), t.column(i).cast(typ)), part0)
        problems = verify(str(out))
        assert (problems == []) if ok else any("schema differs from the contract" in p for p in problems)
    part0.write_bytes(original)

    _resume_after_losing_shard_2(cfg, out, first, None)


@pytest.mark.parametrize("layout", ["webdataset", "parquet"])
def test_packed_layout_on_s3(ray_local, s3_server, s3_bucket, tiny_bundle, make_cfg, layout):
    import boto3

    out = f"{s3_bucket}/run"
    summary = generate(make_cfg(tiny_bundle, out, count=300, shard_size=100, layout=layout), progress=False)
    assert summary.generated == 300
    pages = boto3.client("s3", endpoint_url=s3_server).get_paginator("list_objects_v2")
    keys = sorted(o["Key"] for p in pages.paginate(Bucket=s3_bucket[5:]) for o in p.get("Contents", []))
    tars = [f"run/shards/{k:05d}.tar" for k in range(3)] if layout == "webdataset" else []
    parts = [f"run/metadata/part-{k:05d}.parquet" for k in range(3)]
    assert keys == sorted(["run/_SUCCESS", "run/_job.json", *parts, *tars])  # 3 + 2 objects per 300 images
    assert verify(out) == []
