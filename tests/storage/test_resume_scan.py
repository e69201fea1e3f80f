"""Resume reads one listing of metadata/, never one open per committed shard. No Ray."""

from __future__ import annotations

from genart.bench.memory import bench_resume_listing


def test_resume_scan_lists_and_opens_nothing():
    r = bench_resume_listing(5000)
    assert (r["shards"], r["ls"], r["open"], r["cat"]) == (5000, 1, 0, 0)
    assert r["scan_s"] < 5
