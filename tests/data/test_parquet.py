"""Parquet sources the way `datasets` and other tools write them: embedded bytes or path-only Image structs,
ClassLabel names in the `huggingface` schema metadata, string labels; local and on S3 (moto). No Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import genart
from genart.errors import ConfigError
from genart.storage.fs import get_fs
from genart.storage.hf import read_class_names, schema_metadata
from tests.data.imgs import solid

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _table(images: list[dict], labels, metadata: dict | None = None) -> pa.Table:
    cols = {"image": pa.array(images, IMAGE), "label": pa.array(labels)}
    schema = pa.schema([("image", IMAGE), ("label", cols["label"].type)], metadata=metadata)
    return pa.table(cols, schema=schema)


def _hf(names: list[str], legacy: bool = False) -> dict:
    label = {"names": names, "_type": "ClassLabel"}
    if legacy:  # datasets 1.x/2.x wrote these too
        label.update({"num_classes": len(names), "names_file": None, "id": None})
    return schema_metadata({"image": {"_type": "Image"}, "label": label})


@pytest.mark.parametrize("legacy", [False, True])
def test_embedded_bytes_with_classlabel_names(tmp_path, legacy):
    rows = [{"bytes": solid(v, 4, "L"), "path": f"{v}.png"} for v in (10, 20, 30)]
    pq.write_table(_table(rows, [1, 0, 1], _hf(["Flags", "Food & Drink"], legacy)), tmp_path / "d.parquet")
    got = genart.read_images(str(tmp_path / "d.parquet"), 4, 1)
    assert got.class_names == ("Flags", "Food & Drink")
    assert got.labels.tolist() == [1, 0, 1] and got.images[:, 0, 0, 0].tolist() == [10, 20, 30]


def test_read_class_names_reads_only_top_level_classlabels():
    schema = pa.schema([("label", pa.int64())], metadata=_hf(["a", "b"]))
    assert read_class_names(schema) == {"label": ("a", "b")}
    nested = schema_metadata({"x": {"feature": {"names": ["q"], "_type": "ClassLabel"}, "_type": "Sequence"}})
    assert read_class_names(pa.schema([("x", pa.int64())], metadata=nested)) == {}
    assert read_class_names(pa.schema([("x", pa.int64())], metadata={b"huggingface": b"{not json"})) == {}
    assert read_class_names(pa.schema([("x", pa.int64())])) == {}


def _path_only(base: str):
    """Images under base/ds/imgs (a class folder with & and a space) and a Parquet of paths only at
    base/ds/p.parquet whose paths are relative to base/ds."""
    fs, root = get_fs(base)
    fs.makedirs(f"{root}/ds/imgs/Food & Drink", exist_ok=True)
    fs.pipe_file(f"{root}/ds/imgs/Food & Drink/a.png", solid(200, 4, "L"))
    fs.pipe_file(f"{root}/ds/imgs/b.png", solid(100, 4, "L"))
    rows = [{"bytes": None, "path": "imgs/Food & Drink/a.png"}, {"bytes": None, "path": "imgs/b.png"}]
    with fs.open(f"{root}/ds/p.parquet", "wb") as f:
        pq.write_table(_table(rows, [1, 0], _hf(["Flags", "Food & Drink"])), f)
    return f"{base}/ds/p.parquet"


def test_path_only_rows_resolve_against_the_parquets_folder_from_any_cwd(tmp_path, monkeypatch):
    source = _path_only(str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # `datasets` would look here (huggingface/datasets#7733)
    got = genart.read_images(source, 4, 1)
    assert got.images[:, 0, 0, 0].tolist() == [200, 100] and got.labels.tolist() == [1, 0]
    assert got.class_names == ("Flags", "Food & Drink") and got.report.skipped == {}


def test_path_only_rows_on_s3(s3_bucket):
    got = genart.read_images(_path_only(s3_bucket), 4, 1)
    assert got.images[:, 0, 0, 0].tolist() == [200, 100] and got.class_names == ("Flags", "Food & Drink")


def test_string_labels_get_sorted_names(tmp_path):
    rows = [{"bytes": solid(v, 4, "L"), "path": None} for v in (1, 2, 3)]
    pq.write_table(_table(rows, ["zebra", "Food & Drink", "Animals"]), tmp_path / "s.parquet")
    got = genart.read_images(str(tmp_path / "s.parquet"), 4, 1)
    assert got.class_names == ("Animals", "Food & Drink", "zebra") and got.labels.tolist() == [2, 1, 0]


def test_a_missing_file_is_counted_with_its_path(tmp_path):
    rows = [{"bytes": solid(5, 4, "L"), "path": "ok.png"}, {"bytes": None, "path": "gone/x.png"},
            {"bytes": b"garbage", "path": "bad.png"}]  # fmt: skip
    pq.write_table(_table(rows, [0, 0, 0]), tmp_path / "m.parquet")
    got = genart.read_images(str(tmp_path / "m.parquet"), 4, 1)
    assert got.report.count == 1 and got.report.skipped == {"missing_file": 1, "not_an_image": 1}
    assert got.report.examples["missing_file"] == ["gone/x.png"] and got.class_names == ("0",)


def test_a_file_written_by_datasets_to_parquet(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    (tmp_path / "imgs" / "Food & Drink").mkdir(parents=True)
    (tmp_path / "imgs" / "Food & Drink" / "a.png").write_bytes(solid(200, 4, "L"))
    (tmp_path / "imgs" / "b.png").write_bytes(solid(100, 4, "L"))
    monkeypatch.chdir(
        tmp_path
    )  # datasets keeps relative paths as typed: relative to here = the Parquet's folder
    feats = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["Flags", "Food & Drink"])}
    )
    ds = datasets.Dataset.from_dict(
        {"image": ["imgs/Food & Drink/a.png", "imgs/b.png"], "label": [1, 0]}, features=feats
    )
    ds.to_parquet(str(tmp_path / "p.parquet"))
    meta = json.loads(pq.read_schema(tmp_path / "p.parquet").metadata[b"huggingface"])
    assert meta["info"]["features"]["label"]["names"] == ["Flags", "Food & Drink"]
    monkeypatch.chdir(tmp_path / "imgs")
    got = genart.read_images(str(tmp_path / "p.parquet"), 4, 1)
    assert got.images[:, 0, 0, 0].tolist() == [200, 100] and got.labels.tolist() == [1, 0]
    assert got.class_names == ("Flags", "Food & Drink")


def test_image_column_and_limit(tmp_path):
    from genart.errors import DataError

    rows = [{"bytes": solid(v, 4, "L"), "path": None} for v in range(1, 131)]
    pq.write_table(_table(rows, [0] * 130), tmp_path / "p.parquet")
    got = genart.read_images(str(tmp_path / "p.parquet"), 4, 1, limit=70)
    assert got.images[:, 0, 0, 0].tolist() == list(range(1, 71))
    with pytest.raises(
        DataError, match=r"^data.image_column 'img' is not a column of .* \(columns: image, label\)"
    ):
        genart.read_images(str(tmp_path / "p.parquet"), 4, 1, image_column="img")
    unlabelled = genart.read_images(str(tmp_path / "p.parquet"), 4, 1, label_column=None, limit=3)
    assert unlabelled.class_names is None and unlabelled.labels.tolist() == [-1, -1, -1]


def test_sample_picks_seeded_rows_across_files_and_never_decodes_the_rest(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    rows = [{"bytes": solid(v, 4, "L"), "path": None} for v in range(1, 131)]
    rows[5] = {"bytes": b"junk, not an image", "path": None}  # row 5: skipped if it were ever decoded
    pq.write_table(_table(rows[:70], [0] * 70), folder / "part-0.parquet")
    pq.write_table(_table(rows[70:], [1] * 60), folder / "part-1.parquet")
    pick = np.sort(np.random.default_rng(4).permutation(130)[:12])
    assert 5 not in pick and (pick >= 70).any() and (pick < 70).any()
    got = genart.read_images(str(folder), 4, 1, sample=12, seed=4)
    assert got.images[:, 0, 0, 0].tolist() == (pick + 1).tolist()
    assert got.labels.tolist() == [int(i >= 70) for i in pick]
    assert got.report.count == 12 and got.report.total_skipped == 0
    every = genart.read_images(str(folder), 4, 1, sample=500)  # more than listed: all of them
    assert every.report.count == 129 and every.report.skipped == {"not_an_image": 1}
    with pytest.raises(ConfigError, match=r"^sample must be a positive integer, got 0"):
        genart.read_images(str(folder), 4, 1, sample=0)
