"""The report of what reading a source skipped and converted; labels checked against model.num_classes."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import genart
from genart.data.catalog import class_names_for, list_source
from genart.data.labels import encode_string_labels, folder_class_names
from genart.errors import ConfigError, DataError
from genart.storage.hf import schema_metadata
from tests.data.imgs import sticker


def test_counts_by_reason_with_at_most_three_examples_and_one_log_line(tmp_path):
    root = tmp_path / "art"
    (root / "A & B").mkdir(parents=True)
    (root / "C D").mkdir()
    for i in range(5):
        (root / "A & B" / f"s{i}.png").write_bytes(sticker(4))
        (root / "C D" / f"bad{i}.png").write_bytes(b"junk")
    (root / "C D" / "ok.png").write_bytes(sticker(4))
    # listen to genart's logger directly (the CLI stops it propagating), with a handler of our own: caplog's
    # would see each record twice whenever the logger still propagates to the root
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("genart")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        got = genart.read_images(str(root), 4, 3)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    r = got.report
    assert (r.count, r.skipped, r.converted) == (6, {"not_an_image": 5}, {"alpha": 6})
    assert r.examples == {
        "alpha": ["A & B/s0.png", "A & B/s1.png", "A & B/s2.png"],
        "not_an_image": ["C D/bad0.png", "C D/bad1.png", "C D/bad2.png"],
    }
    assert r.per_class == {"A & B": 5, "C D": 1}
    lines = [rec.getMessage() for rec in records if rec.name.startswith("genart")]
    assert lines == [
        f"data.source {root}: 6 images (2 classes); converted: alpha 6; "
        "skipped: not_an_image 5 (C D/bad0.png, C D/bad1.png, C D/bad2.png)"
    ]


def test_nothing_readable_is_one_clear_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(
        DataError,
        match=r"holds no readable images \(1 files, all unreadable\); skipped: not_an_image 1 \(a.png\)",
    ):
        genart.read_images(str(tmp_path), 4, 3)


def test_label_rules():
    assert folder_class_names(["b", "B", "a b", "a"]) == ("B", "a", "a b", "b")
    ids, names = encode_string_labels(["x", "Y", "x"], "k")
    assert ids.tolist() == [1, 0, 1] and ids.dtype == np.int64 and names == ("Y", "x")
    with pytest.raises(DataError, match="^k: 1 rows have no label"):
        encode_string_labels(["x", None], "k")


def test_an_int_label_without_a_name_is_refused(tmp_path):
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    meta = schema_metadata({"label": {"names": ["a", "b"], "_type": "ClassLabel"}})
    schema = pa.schema([("image", image), ("label", pa.int64())], metadata=meta)
    table = pa.table({"image": [{"bytes": sticker(4), "path": None}], "label": [2]}, schema=schema)
    pq.write_table(table, tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"label 2 has no class name \(the ClassLabel names 2 classes\)"):
        list_source(str(tmp_path / "p.parquet"), None)


def test_num_classes_must_match_the_class_folders(tmp_path):
    for name in ("A & B", "C D"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(sticker(4))
    cat = list_source(str(tmp_path), None)
    assert class_names_for(cat, 2, "SRC") == ["A & B", "C D"]
    assert class_names_for(cat, 0, "SRC") is None
    with pytest.raises(ConfigError) as err:
        class_names_for(cat, 10, "SRC")
    assert str(err.value) == (
        "model.num_classes is 10 but data.source SRC has 2 classes ('A & B', 'C D'); "
        "set model.num_classes=2 (or 0 for an unconditional model)"
    )
