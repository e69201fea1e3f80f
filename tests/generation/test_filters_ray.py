"""generate() with the quality and near-duplicate filters on a real 2-CPU local Ray: counts hold, every item
passes, no two items of the whole output are near-duplicates (across shards, replicas and a resume)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from genart.bundle import load_bundle, save_bundle
from genart.bundle.store import TINY_DCGAN
from genart.errors import ConfigError, JobFailed
from genart.filters.score import phash64
from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.ids import item_seeds
from genart.images import decode
from genart.models.gan import Discriminator
from genart.models.registry import build_generator

D_SPEC = {"image_size": 32, "channels": 1, "num_classes": 10, "d_width": 8, "attention": False}


@pytest.fixture(scope="module")
def scored_bundle(tmp_path_factory):
    """A tiny conditional GAN bundle with an (untrained, damped) discriminator, and min_score 0.2: scores are
    within-class percentile ranks of D's logits, so about a fifth of the draws fail in every class."""
    uri = str(tmp_path_factory.mktemp("filters") / "bundle")
    torch.manual_seed(0)
    gen = build_generator(TINY_DCGAN)
    disc = Discriminator(**D_SPEC, spectral_norm=False)
    with torch.no_grad():
        disc.linear.weight.mul_(0.05)
    training = {"steps": 0, "world_size": 0, "data": {"source": "none"}}
    spec = {**D_SPEC, "spectral_norm": False, "loss": "hinge"}
    save_bundle(uri, gen, TINY_DCGAN, training, discriminator=(spec, disc.state_dict()))
    return uri, 0.2


def _rows(out: Path):
    return pq.read_table(out / "metadata").sort_by("id")


def _assert_no_near_duplicates(hashes: np.ndarray, d: int) -> None:
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    np.fill_diagonal(dist, 65)
    i, j = np.unravel_index(dist.argmin(), dist.shape)
    assert dist.min() > d, f"items {i} and {j} are {dist.min()} bits apart"


def test_filtered_collection_two_replicas_then_resume(ray_local, make_cfg, scored_bundle, tmp_path):
    uri, threshold = scored_bundle
    out = tmp_path / "collection"
    cfg = make_cfg(
        uri,
        str(out),
        count=1000,
        shard_size=100,
        filter={"min_score": threshold, "scorer": "discriminator"},
        dedupe={"max_distance": 10},
        market={"standard": "opensea", "base_uri": "ipfs://bafy/", "name": "Filtered"},
    )
    summary = generate(cfg, progress=False)
    assert summary.generated == 1000 and summary.rejected_score > 100
    t = _rows(out)
    assert t.column("id").to_pylist() == list(range(1000))
    assert {"score", "phash"} <= set(t.column_names)
    assert min(t.column("score").to_pylist()) >= np.float32(threshold)
    images = np.stack([decode((out / p).read_bytes()) for p in t.column("path").to_pylist()])
    hashes = t.column("phash").to_numpy()
    assert np.array_equal(hashes, phash64(images))  # the column is the hash of the stored pixels
    _assert_no_near_duplicates(hashes, 10)
    # the stored seed of every item (its kept draw) regenerates it; some items needed redraws
    seeds, cls = t.column("seed").to_numpy(), t.column("class_id").to_numpy()
    regen = load_bundle(uri).generate(seeds, cls)
    assert np.abs(regen.astype(int) - images.astype(int)).max() <= 1
    assert (seeds != item_seeds(cfg.seed, np.arange(1000))).sum() >= 100
    token = json.loads((out / "tokens" / "17.json").read_text())
    seed_attr = next(a["value"] for a in token["attributes"] if a["trait_type"] == "Seed")
    assert seed_attr == str(seeds[17])
    assert verify(str(out)) == []

    # resume after losing shards 5..9: the index is reloaded from shards 0..4, which are not rewritten
    before = {k: (out / "metadata" / f"part-{k:05d}.parquet").stat().st_mtime_ns for k in range(5)}
    (out / "_SUCCESS").unlink()
    for k in range(5, 10):
        (out / "metadata" / f"part-{k:05d}.parquet").unlink()
    again = generate(cfg, progress=False)
    assert again.generated == 500 and again.resumed_shards == 5
    assert {k: (out / "metadata" / f"part-{k:05d}.parquet").stat().st_mtime_ns for k in range(5)} == before
    t2 = _rows(out)
    assert t2.column("id").to_pylist() == list(range(1000))
    _assert_no_near_duplicates(t2.column("phash").to_numpy(), 10)
    assert verify(str(out)) == []


def test_filter_that_cannot_be_met_stops_with_a_clear_message(ray_local, make_cfg, scored_bundle, tmp_path):
    uri, _ = scored_bundle
    out = tmp_path / "strict"
    cfg = make_cfg(
        uri,
        str(out),
        count=200,
        shard_size=100,
        filter={"min_score": 0.99, "scorer": "discriminator", "max_attempts": 3},
    )
    t0 = time.monotonic()
    with pytest.raises(JobFailed) as err:
        generate(cfg, progress=False)
    assert time.monotonic() - t0 < 120
    msg = str(err.value)
    assert "found no acceptable draw in filter.max_attempts=3 draws" in msg, msg
    assert "scored below filter.min_score=0.99" in msg and "Raise filter.max_attempts and re-run" in msg, msg
    assert not (out / "_SUCCESS").exists() and not list((out / "metadata").glob("part-*.parquet"))


def test_filter_config_errors_before_any_work(make_cfg, tmp_path):
    from genart.bundle import save_untrained_bundle

    plain = str(tmp_path / "plain")
    save_untrained_bundle(plain)  # no discriminator
    cfg = make_cfg(plain, str(tmp_path / "out"), filter={"min_score": 0.5, "scorer": "discriminator"})
    with pytest.raises(ConfigError, match="carries no discriminator"):
        generate(cfg, progress=False)
    assert not (tmp_path / "out").exists()


def test_verify_reports_near_duplicates(ray_local, make_cfg, scored_bundle, tmp_path):
    uri, _ = scored_bundle
    out = tmp_path / "dedupe"
    cfg = make_cfg(uri, str(out), count=300, shard_size=100, layout="parquet", dedupe={"max_distance": 6})
    generate(cfg, progress=False)
    assert verify(str(out)) == []
    # forge item 250's hash to be 3 bits from item 5's: verify must name the pair
    first = pq.read_table(out / "metadata" / "part-00000.parquet")
    h5 = int(first.column("phash")[5].as_py())
    part = out / "metadata" / "part-00002.parquet"
    t = pq.read_table(part)
    hashes = t.column("phash").to_numpy().copy()
    hashes[50] = h5 ^ 0b111
    t = t.set_column(t.schema.get_field_index("phash"), "phash", pa.array(hashes, pa.uint64()))
    pq.write_table(t, part)
    problems = verify(str(out))
    assert any("item 250 is within dedupe.max_distance=6 of item 5" in p for p in problems), problems
