"""Token metadata, computed traits, rarity and the config checks of market.standard: opensea. No Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from genart.config.generate import MarketConfig
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.market import pixel_traits, rarity, traits_match
from tests.market.conftest import BASE_URI, COUNT, market_cfg

TRAITS = ["Seed", "Class", "Model", "Background", "Dominant colour", "Brightness"]


def square(bg, fg, side=32, inner=16, channels=3):
    img = np.zeros((side, side, channels), dtype=np.uint8)
    img[:] = bg[:channels]
    lo = (side - inner) // 2
    img[lo : lo + inner, lo : lo + inner] = fg[:channels]
    return img


def test_pixel_traits_name_background_subject_and_brightness():
    black, white, red, navy = (0, 0, 0), (255, 255, 255), (220, 30, 30), (0, 0, 128)
    digit = square(black, white, channels=1)[None]  # digit-like: bright ink on black, mean 63.75
    batch = np.stack(
        [
            square(white, red),
            square(navy, navy),  # uniform: the subject is the background
            np.full((32, 32, 3), 250, np.uint8),
        ]
    )
    assert pixel_traits(digit) == [{"Background": "black", "Dominant colour": "white", "Brightness": "dark"}]
    assert pixel_traits(batch) == [
        {"Background": "white", "Dominant colour": "red", "Brightness": "bright"},
        {"Background": "navy", "Dominant colour": "navy", "Brightness": "very dark"},
        {"Background": "white", "Dominant colour": "white", "Brightness": "very bright"},
    ]
    # a few stray pixels are noise, not a subject; large images are sampled (same answer)
    noisy = np.zeros((1, 512, 512, 1), np.uint8)
    noisy[0, 100:103, 100:103] = 255
    assert pixel_traits(noisy)[0]["Dominant colour"] == "black"
    with pytest.raises(ValueError, match="uint8"):
        pixel_traits(np.zeros((1, 8, 8, 2), np.uint8))


def test_rarity_counts_shares_and_leaves_out_seeds():
    items = [
        {"Seed": str(i), "Class": str(i % 3), "Brightness": "dark" if i < 4 else "bright"} for i in range(10)
    ]
    n, table = rarity(items)
    assert n == 10 and list(table) == ["Class", "Brightness"]
    assert table["Class"] == {
        "0": {"count": 4, "share": 0.4},
        "1": {"count": 3, "share": 0.3},
        "2": {"count": 3, "share": 0.3},
    }
    assert list(table["Brightness"].items()) == [
        ("bright", {"count": 6, "share": 0.6}),
        ("dark", {"count": 4, "share": 0.4}),
    ]
    assert traits_match(
        {"Dominant colour": "White", "Class": "3"}, {"dominant_colour": "white", "CLASS": "3"}
    )
    assert not traits_match({"Class": "3"}, {"class": "4"}) and not traits_match({}, {"brightness": "dark"})


@pytest.mark.parametrize("bad", ["not a uri", "bucket/images/", "ipfs:/CID", "/abs/path/"])
def test_base_uri_that_is_not_a_uri_is_rejected(bad):
    with pytest.raises(ValidationError, match="market.base_uri must be a URI"):
        MarketConfig(standard="opensea", base_uri=bad)


def test_opensea_needs_a_base_uri_and_the_files_layout(tmp_path):
    with pytest.raises(ValidationError, match="market.base_uri is required"):
        MarketConfig(standard="opensea")
    with pytest.raises(ValidationError, match="needs layout: files"):
        market_cfg("b", str(tmp_path), layout="webdataset")
    assert MarketConfig(standard="opensea", base_uri="https://cdn.example.com/c/").base_uri.endswith("/c/")


def test_every_item_has_its_token(collection):
    cfg, meta, out = collection
    rows = pq.read_table(out / "metadata").sort_by("id").to_pylist()
    assert [r["id"] for r in rows] == list(range(COUNT))
    assert sorted(p.name for p in (out / "tokens").glob("*.json")) == sorted(
        f"{i}.json" for i in range(COUNT)
    )
    assert sorted(p.name for p in (out / "tokens" / "_traits").iterdir()) == [
        "part-00000.json",
        "part-00001.json",
        "part-00002.json",
    ]
    for row in rows:
        token = json.loads((out / "tokens" / f"{row['id']}.json").read_text())
        assert set(token) == {"name", "description", "image", "attributes"}
        assert token["name"] == f"Tiny Digits #{row['id']}" and token["description"] == "test"
        assert token["image"] == BASE_URI + row["path"]
        attrs = token["attributes"]
        assert [a["trait_type"] for a in attrs] == TRAITS and all(
            set(a) == {"trait_type", "value"} for a in attrs
        )
        values = {a["trait_type"]: a["value"] for a in attrs}
        assert values["Seed"] == str(row["seed"]) and values["Class"] == meta["class_names"][row["class_id"]]
        assert values["Model"] == meta["model_id"][:12]
        assert values["Brightness"] in {"very dark", "dark", "medium", "bright", "very bright"}


def test_collection_json_is_the_rarity_of_the_tokens(collection):
    cfg, meta, out = collection
    record = json.loads((out / "collection.json").read_text())
    assert {
        k: record[k] for k in ("name", "description", "standard", "item_count", "base_uri", "job_id")
    } == {
        "name": "Tiny Digits",
        "description": "test",
        "standard": "opensea",
        "item_count": COUNT,
        "base_uri": BASE_URI,
        "job_id": "job-1",
    }
    assert record["model_id"] == meta["model_id"] and record["rarity_excludes"] == ["Seed"]
    table = record["rarity"]
    assert list(table) == TRAITS[1:]
    assert table["Class"] == {str(c): {"count": 6, "share": 0.1} for c in range(10)}
    tokens = [json.loads((out / "tokens" / f"{i}.json").read_text()) for i in range(COUNT)]
    for trait, values in table.items():
        assert sum(v["count"] for v in values.values()) == COUNT
        for value, v in values.items():
            n = sum(1 for t in tokens for a in t["attributes"] if a == {"trait_type": trait, "value": value})
            assert v == {"count": n, "share": round(n / COUNT, 6)}


def test_a_retried_shard_rewrites_the_same_token_bytes(collection, tmp_path):
    cfg, meta, out = collection
    before = {p.name: p.read_bytes() for p in (out / "tokens").glob("*.json")}
    again = cfg.model_copy(update={"output": str(tmp_path / "again"), "batch_size": 7})
    GeneratorReplica(again, "job-2", meta["model_id"]).run_shard(Plan.from_config(again, 10).shard(1))
    redo = {p.name: p.read_bytes() for p in (tmp_path / "again" / "tokens").glob("*.json")}
    assert sorted(redo) == sorted(f"{i}.json" for i in range(25, 50))
    assert all(redo[k] == before[k] for k in redo)
    summary = "tokens/_traits/part-00001.json"
    assert (tmp_path / "again" / summary).read_bytes() == (out / summary).read_bytes()


def test_standard_none_writes_nothing_extra(collection, tmp_path):
    cfg, meta, _ = collection
    plain = cfg.model_copy(update={"output": str(tmp_path / "plain"), "market": MarketConfig()})
    GeneratorReplica(plain, "job-3", meta["model_id"]).run_shard(Plan.from_config(plain, 10).shard(0))
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["images", "metadata"]
