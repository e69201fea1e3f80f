"""Pure helpers of `genart bench memory`'s replica RSS measurement (no Ray)."""

import os

import psutil
import pytest

from genart.bench.memory import _committed_shards, _replica_rss, format_replicas, rss_growth

MB = 2**20


def test_rss_growth_compares_the_warm_sample_with_the_last_one_per_process():
    samples = [
        (0.0, 0, {}),  # before the replicas start
        (0.5, 0, {11: 100 * MB, 12: 100 * MB}),
        (1.0, 9, {11: 150 * MB, 12: 140 * MB}),
        (1.5, 10, {11: 200 * MB, 12: 200 * MB}),  # the first sample at >= 10% of 100 shards
        (2.0, 60, {11: 230 * MB, 12: 200 * MB}),
        (2.5, 99, {11: 220 * MB, 12: 210 * MB}),
        (3.0, 100, {}),  # after the job: the replicas are gone
    ]
    r = rss_growth(samples, 100)
    assert (r["warm_shards"], r["end_shards"], r["samples"], r["replicas_seen"]) == (10, 99, 5, 2)
    a, b = r["replicas"]
    assert (a["pid"], a["warm_mb"], a["end_mb"], a["peak_mb"]) == (11, 200, 220, 230)
    assert a["growth"] == pytest.approx(0.10) and b["growth"] == pytest.approx(0.05)
    assert r["growth"] == pytest.approx(430 / 400 - 1)
    text = format_replicas({**r, "shards": 100, "shard_size": 500, "images_per_s": 2000.0, "seconds": 3.0})
    assert "| 11 | 200 | 220 | 230 | +10.0% |" in text and "+7.5%" in text


def test_a_replaced_replica_has_no_pair_and_a_short_job_is_an_error():
    samples = [(1.0, 2, {11: 100 * MB, 12: 100 * MB}), (2.0, 8, {11: 120 * MB, 13: 90 * MB})]
    r = rss_growth(samples, 10)
    assert [p["pid"] for p in r["replicas"]] == [11] and r["replicas_seen"] == 3
    with pytest.raises(ValueError, match="no sample after 1 committed shards"):
        rss_growth([(1.0, 0, {11: MB})], 10)


def test_committed_shards_counts_metadata_parts_only(tmp_path):
    assert _committed_shards(str(tmp_path)) == 0
    (tmp_path / "metadata").mkdir()
    for name in ("part-00000.parquet", "part-00001.parquet", ".part-00002.parquet.tmp", "other.json"):
        (tmp_path / "metadata" / name).write_bytes(b"")
    assert _committed_shards(str(tmp_path)) == 2


def test_replica_rss_finds_no_replica_under_a_plain_process():
    assert _replica_rss(psutil.Process(os.getpid())) == {}
