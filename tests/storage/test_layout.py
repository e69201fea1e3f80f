"""Path rules of the output layout: deterministic, zero-padded, parseable."""

from __future__ import annotations

from genart.storage import layout


def test_names():
    assert layout.image_path(3, 301, "png") == "images/00003/0000000301.png"
    assert layout.image_path(123456, 9_999_999_999, "jpeg") == "images/123456/9999999999.jpg"
    assert layout.image_path(0, 0, "webp") == "images/00000/0000000000.webp"
    assert layout.metadata_path(7) == "metadata/part-00007.parquet"
    assert (layout.JOB, layout.SUCCESS) == ("_job.json", "_SUCCESS")


def test_parse_metadata_name():
    assert layout.parse_metadata_name("part-00012.parquet") == 12
    assert layout.parse_metadata_name("bucket/out/metadata/part-123456.parquet") == 123456
    for other in (".part-00012.parquet.ab12.tmp", "part-12.parquet", "part-00012.parquet.tmp", "x.parquet"):
        assert layout.parse_metadata_name(other) is None
    assert all(layout.parse_metadata_name(layout.metadata_name(k)) == k for k in (0, 9, 99999, 100000))
