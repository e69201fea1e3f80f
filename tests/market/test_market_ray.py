"""A 200-item opensea job on a real 2-CPU local Ray: a token per id, collection.json, resume."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from genart.generation.runner import generate
from genart.generation.verify import verify
from tests.market.conftest import market_cfg

BASE = "https://cdn.example.com/tiny/"


def test_opensea_job_writes_every_token_and_the_collection(ray_local, tiny_bundle, tmp_path):
    out = tmp_path / "out"
    cfg = market_cfg(
        tiny_bundle,
        str(out),
        count=200,
        shard_size=50,
        batch_size=32,
        replicas=2,
        market={"standard": "opensea", "base_uri": BASE, "name": "Tiny", "description": "two hundred"},
    )
    summary = generate(cfg, progress=False)
    assert summary.generated == 200 and verify(str(out)) == []
    rows = pq.read_table(out / "metadata").sort_by("id").to_pylist()
    assert [r["id"] for r in rows] == list(range(200))
    for row in rows:
        token = json.loads((out / "tokens" / f"{row['id']}.json").read_text())
        assert token["name"] == f"Tiny #{row['id']}" and token["image"] == BASE + row["path"]
        assert token["attributes"][:2] == [
            {"trait_type": "Seed", "value": str(row["seed"])},
            {"trait_type": "Class", "value": str(row["class_id"])},
        ]
    assert len(list((out / "tokens").glob("*.json"))) == 200
    assert sorted(p.name for p in (out / "tokens" / "_traits").iterdir()) == [
        f"part-{k:05d}.json" for k in range(4)
    ]
    record = json.loads((out / "collection.json").read_text())
    assert (record["item_count"], record["name"], record["job_id"]) == (200, "Tiny", summary.job_id)
    for values in record["rarity"].values():
        assert sum(v["count"] for v in values.values()) == 200
        assert abs(sum(v["share"] for v in values.values()) - 1) < 1e-5
    assert record["rarity"]["Class"]["7"] == {"count": 20, "share": 0.1}

    # a resumed job rewrites the lost shard's tokens, its trait summary and the collection, byte for byte
    before = (out / "collection.json").read_bytes()
    summary = out / "tokens" / "_traits" / "part-00002.json"
    summary_before = summary.read_bytes()
    summary.unlink()
    (out / "_SUCCESS").unlink()
    (out / "collection.json").unlink()
    (out / "metadata" / "part-00002.parquet").unlink()
    lost = {i: (out / "tokens" / f"{i}.json").read_bytes() for i in range(100, 150)}
    for i in lost:
        (out / "tokens" / f"{i}.json").unlink()
    again = generate(cfg, progress=False)
    assert (again.generated, again.resumed_shards) == (50, 3)
    assert all((out / "tokens" / f"{i}.json").read_bytes() == b for i, b in lost.items())
    assert summary.read_bytes() == summary_before
    assert (out / "collection.json").read_bytes() == before
