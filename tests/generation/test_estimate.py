"""The cost model behind `genart plan`: exact object and request arithmetic, lazy for 10^10 items. No Ray."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.generation.estimate import MULTIPART_CHUNK, S3_PUT_USD_PER_1000, Sample, estimate, puts_for

SAMPLE = Sample(image_bytes=400.0, metadata_row_bytes=60.0, source="test")


@pytest.mark.parametrize(
    ("layout", "objects", "puts"),
    [
        ("files", 10**9 + 10**6 + 2, 10**9 + 10**6 + 3),
        ("webdataset", 2 * 10**6 + 2, 2 * 10**6 + 3),
        ("parquet", 10**6 + 2, 10**6 + 3),
    ],
)
def test_a_billion_images(make_cfg, layout, objects, puts):
    cfg = make_cfg("m", "s3://b/o", count=10**9, shard_size=1000, replicas=100, layout=layout)
    e = estimate(cfg, SAMPLE, images_per_s_per_replica=1000.0)
    assert (e.shards, e.objects, e.put_requests, e.list_requests) == (
        10**6,
        objects,
        puts,
        1000 * (1 + (layout == "webdataset")),
    )
    assert e.request_usd == pytest.approx((puts + e.list_requests) / 1000 * S3_PUT_USD_PER_1000)
    assert e.image_bytes == 400 * 10**9 and e.seconds == pytest.approx(10**4)
    if layout == "webdataset":  # tar: a 512-byte header per member and each member padded to 512
        assert e.bytes > 2048 * 10**9
    else:
        assert 460 * 10**9 <= e.bytes < 470 * 10**9


def test_per_object_puts_dominate_at_a_billion(make_cfg):
    cost = {
        layout: estimate(make_cfg("m", "o", count=10**9, shard_size=1000, layout=layout), SAMPLE).request_usd
        for layout in ("files", "webdataset", "parquet")
    }
    assert cost["files"] == pytest.approx(5005.01, abs=0.01)
    assert cost["files"] > 400 * cost["webdataset"] > 400 * cost["parquet"]


def test_ragged_last_shard_multipart_and_market(make_cfg):
    assert (puts_for(MULTIPART_CHUNK), puts_for(MULTIPART_CHUNK + 1), puts_for(5 * MULTIPART_CHUNK)) == (
        1,
        4,
        7,
    )
    big = Sample(image_bytes=1_000_000.0, metadata_row_bytes=60.0, source="test")  # 1 MB images
    e = estimate(make_cfg("m", "o", count=2500, shard_size=1000, layout="parquet"), big)
    # shards of 1000, 1000, 500 MB: each a multipart upload of 20 / 20 / 10 parts
    assert (e.shards, e.put_requests) == (3, 3 + 22 + 22 + 12)
    e = estimate(
        make_cfg("m", "o", count=10, shard_size=4, market={"standard": "opensea", "base_uri": "ipfs://cid/"}),
        SAMPLE,
    )
    # 10 images, 3 metadata parts, 2 job files, 10 tokens + 3 trait summaries + collection.json
    assert (e.objects, e.put_requests) == (10 + 3 + 2 + 14, 10 + 3 + 3 + 14)


def test_ten_billion_is_planned_lazily(make_cfg):
    t0 = time.perf_counter()
    e = estimate(make_cfg("m", "o", count=10**10, shard_size=1000), SAMPLE, 500.0)
    assert time.perf_counter() - t0 < 0.1 and e.shards == 10**7


def test_plan_command(tiny_bundle, tmp_path):
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(f"kind: generate\nmodel: {tiny_bundle}\noutput: {tmp_path / 'out'}\ncount: 1000\n")
    res = CliRunner().invoke(
        main, ["plan", str(cfg), "--set", "count=1000000000", "--all-layouts", "--measure"]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [ln.split(" | ")[0] for ln in lines[2:5]] == ["| files", "| webdataset", "| parquet"]
    assert "bundle sample of" in res.output and "images/s per replica" in res.output
    assert not (tmp_path / "out").exists()  # planning writes nothing

    res = CliRunner().invoke(
        main, ["plan", str(cfg), "--set", "model=/nonexistent", "--images-per-s", "100", "--json"]
    )
    assert res.exit_code == 0, res.output
    (e,) = json.loads(res.output[res.output.index("[") :])
    assert e["count"] == 1000 and e["seconds"] == pytest.approx(5.0) and "bundle unavailable" in e["sample"]
    assert CliRunner().invoke(main, ["plan", str(cfg), "--set", "count=0"]).exit_code == 2
