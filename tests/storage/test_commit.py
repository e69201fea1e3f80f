"""The shard writer: images first, metadata last (atomically), exact schema, bounded retries. No Ray."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from genart.errors import StorageError
from genart.images import Batch, encode, sha256_hex
from genart.storage.commit import SCHEMA, ShardFormat, ShardWriter, scan_metadata
from genart.storage.output import Output


class FlakyFS(LocalFileSystem):
    """The real local filesystem, recording every write in order and failing the first `fail` writes
    (like Ray's FlakyOutputStream)."""

    cachable = False

    def __init__(self, fail: int = 0, **kw):
        super().__init__(**kw)
        self.fail, self.writes = fail, []

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if self.fail:
            self.fail -= 1
            raise OSError(f"injected failure writing {path}")
        self.writes.append(path)
        return super().pipe_file(path, value, mode=mode, **kwargs)

    def mv(self, path1, path2, **kwargs):
        self.writes.append(path2)
        return super().mv(path1, path2, **kwargs)


def _batch(start, n, cls=True) -> Batch:
    """n encoded 6x8 (width x height) grayscale items with ids start.., seeds id*10+1, classes id%10."""
    ids = np.arange(start, start + n, dtype=np.int64)
    imgs = np.random.default_rng(start).integers(0, 256, size=(n, 8, 6, 1), dtype=np.uint8)
    blobs = [encode(im) for im in imgs]
    return Batch(ids, ids * 10 + 1, (ids % 10).astype(np.int32) if cls else None, imgs, blobs=blobs)


def _digests(batch: Batch) -> list[str]:
    return [sha256_hex(b) for b in batch.blobs]


def _writer(root, fs, layout_name="files", **kw):
    shard_format = ShardFormat(job_id="job-1", model_id="m" * 64, fmt="png", layout=layout_name)
    return ShardWriter(Output.at(fs, str(root)), shard_format, backoff_s=0.01, **kw)


def test_images_first_then_metadata_with_the_exact_schema(tmp_path):
    fs = FlakyFS()
    w = _writer(tmp_path, fs)
    out = w.open_shard(4)
    b = _batch(450, 30)
    blobs, digests = b.blobs, _digests(b)
    # batches may arrive out of order
    out.add(b[15:])
    out.add(b[:15])
    assert scan_metadata(fs, str(tmp_path))[0] == set()  # images alone are not a shard
    before = datetime.now(timezone.utc)
    assert out.commit() == sum(len(b) for b in blobs)
    assert scan_metadata(fs, str(tmp_path))[0] == {4}
    meta = str(tmp_path / "metadata/part-00004.parquet")
    assert fs.writes[-1] == meta and len(fs.writes) == 32  # 30 images, temp part, rename
    assert all("/images/00004/" in p for p in fs.writes[:30])
    table = pq.read_table(meta)
    assert table.schema.remove_metadata().equals(SCHEMA)
    assert table.schema.field("class_id").type == pa.int32() and table.schema.field("class_id").nullable
    assert table.num_rows == 30
    assert table.column("id").to_pylist() == list(range(450, 480))
    row = table.slice(3, 1).to_pylist()[0]
    assert row["path"] == "images/00004/0000000453.png" and row["seed"] == 4531 and row["class_id"] == 3
    assert (row["width"], row["height"], row["format"], row["shard"]) == (6, 8, "png", 4)
    assert (row["job_id"], row["model_id"]) == ("job-1", "m" * 64)
    assert row["created_at"] >= before.replace(microsecond=0)
    assert (tmp_path / row["path"]).read_bytes() == blobs[3]
    assert row["sha256"] == digests[3]


def test_unconditional_rows_have_null_class(tmp_path):
    out = _writer(tmp_path, FlakyFS()).open_shard(0)
    out.add(_batch(0, 5, cls=False))
    out.commit()
    assert pq.read_table(tmp_path / "metadata/part-00000.parquet").column("class_id").null_count == 5


def test_transient_failures_are_retried(tmp_path, caplog):
    fs = FlakyFS(fail=3)
    out = _writer(tmp_path, fs, attempts=4).open_shard(1)
    out.add(_batch(100, 4))
    out.commit()
    assert scan_metadata(fs, str(tmp_path))[0] == {1}
    assert len(list((tmp_path / "images/00001").iterdir())) == 4
    assert sum("retrying" in r.message for r in caplog.records) == 3


def test_persistent_failure_names_shard_and_path(tmp_path):
    fs = FlakyFS(fail=100)
    out = _writer(tmp_path, fs, attempts=3).open_shard(2)
    with pytest.raises(StorageError, match=r"shard 2: writing .*images/00002/.* failed after 3 attempts"):
        out.add(_batch(200, 4))
    fs.fail = 100
    with pytest.raises(StorageError, match=r"shard 2: writing .*metadata/part-00002.parquet failed after 3"):
        out.commit()
    assert scan_metadata(fs, str(tmp_path))[0] == set()


def test_scan_ignores_and_reports_temp_files(tmp_path):
    fs = LocalFileSystem()
    (tmp_path / "metadata").mkdir()
    for name in ("part-00000.parquet", "part-00003.parquet", ".part-00001.parquet.abc.tmp", "notes.txt"):
        (tmp_path / "metadata" / name).write_bytes(b"x")
    committed, stale = scan_metadata(fs, str(tmp_path))
    assert committed == {0, 3}
    assert [s.rsplit("/", 1)[1] for s in stale] == [".part-00001.parquet.abc.tmp"]
    assert scan_metadata(fs, str(tmp_path / "nothing-here")) == (set(), [])


def test_webdataset_tar_is_written_before_the_metadata(tmp_path):
    import webdataset as wds

    fs = FlakyFS()
    out = _writer(tmp_path, fs, layout_name="webdataset").open_shard(3)
    b = _batch(300, 6)
    blobs, digests = b.blobs, _digests(b)
    out.add(b[3:])  # out of order
    out.add(b[:3])
    assert fs.writes == [] and scan_metadata(fs, str(tmp_path))[0] == set()  # nothing before the commit
    assert out.commit() == sum(len(b) for b in blobs)
    tar, meta = str(tmp_path / "shards/00003.tar"), str(tmp_path / "metadata/part-00003.parquet")
    assert [fs.writes[1], fs.writes[3]] == [tar, meta] and len(fs.writes) == 4  # temp, rename, temp, rename
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["00003.tar"]
    table = pq.read_table(meta)
    assert table.schema.remove_metadata().equals(SCHEMA)
    assert table.column("path").to_pylist() == [f"{i:010d}.png" for i in range(300, 306)]
    samples = list(wds.WebDataset(tar, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"{i:010d}" for i in range(300, 306)]
    assert [s["png"] for s in samples] == blobs
    item = json.loads(samples[4]["json"])
    assert (item["id"], item["seed"], item["class_id"], item["sha256"]) == (304, 3041, 4, digests[4])
    assert (item["shard"], item["width"], item["height"], item["format"]) == (3, 6, 8, "png")


def test_parquet_layout_embeds_the_images(tmp_path):
    fs = FlakyFS()
    out = _writer(tmp_path, fs, layout_name="parquet").open_shard(0)
    b = _batch(0, 5)
    blobs = b.blobs
    out.add(b)
    out.commit()
    assert len(fs.writes) == 2 and not (tmp_path / "images").exists() and not (tmp_path / "shards").exists()
    table = pq.read_table(tmp_path / "metadata/part-00000.parquet")
    assert table.schema.names == [f.name for f in SCHEMA] + ["image"]
    assert table.schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = table.column("image").to_pylist()
    assert [im["bytes"] for im in images] == blobs
    assert (
        [im["path"] for im in images]
        == table.column("path").to_pylist()
        == [f"{i:010d}.png" for i in range(5)]
    )
    assert [sha256_hex(im["bytes"]) for im in images] == table.column("sha256").to_pylist()
