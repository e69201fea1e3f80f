"""collection.json from the per-shard trait summaries (tokens/_traits/part-NNNNN.json), not from every token:
exactly the table the tokens give, the fallback for outputs without summaries, retries, S3. No Ray."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from genart.bundle import read_meta
from genart.errors import StorageError
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.generation.runner import prepare_output
from genart.generation.verify import verify
from genart.images import Batch
from genart.market import NOT_RANKED, flat_traits, rarity, write_collection
from genart.storage.fs import get_fs
from genart.storage.output import Output
from tests.market.conftest import COUNT, SHARD, market_cfg, run_without_ray

JOB = {"job_id": "job-1"}


def _tokens(out, ids) -> list[dict]:
    return [json.loads((out / "tokens" / f"{i}.json").read_text()) for i in ids]


def _copy(collection, tmp_path):
    """A copy of the fixture's output and its config pointed at the copy."""
    cfg, meta, out = collection
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    return cfg.model_copy(update={"output": str(copy)}), {**JOB, "model_id": meta["model_id"]}, copy


def test_collection_from_summaries_is_exactly_the_rarity_of_the_tokens(collection):
    cfg, meta, out = collection
    n, table = rarity(flat_traits(t) for t in _tokens(out, range(COUNT)))
    record = json.loads((out / "collection.json").read_text())
    assert n == COUNT and record["item_count"] == COUNT
    # the same table, the same trait order and the same value order
    assert json.dumps(record["rarity"]) == json.dumps(table)
    assert list(record["rarity"]) == ["Class", "Model", "Background", "Dominant colour", "Brightness"]


def test_shard_summary_counts_its_tokens(collection):
    _, _, out = collection
    for k, (lo, hi) in enumerate([(0, 25), (25, 50), (50, 60)]):
        counts: dict[str, Counter] = {}
        for token in _tokens(out, range(lo, hi)):
            for trait, value in flat_traits(token).items():
                if trait not in NOT_RANKED:
                    counts.setdefault(trait, Counter())[value] += 1
        summary = json.loads((out / f"tokens/_traits/part-{k:05d}.json").read_text())
        assert summary == {
            "shard": k,
            "ids": [lo, hi],
            "items": hi - lo,
            "traits": {t: dict(sorted(c.items())) for t, c in counts.items()},
        }
        assert list(summary["traits"]) == ["Class", "Model", "Background", "Dominant colour", "Brightness"]


def test_collection_reads_summaries_not_tokens(collection, tmp_path):
    cfg, job, copy = _copy(collection, tmp_path)
    before = (copy / "collection.json").read_bytes()
    (copy / "collection.json").unlink()
    for p in copy.glob("tokens/*.json"):
        p.unlink()  # only the summaries are left: collection.json must not need a token
    write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))
    assert (copy / "collection.json").read_bytes() == before


def test_output_without_summaries_falls_back_to_the_tokens(collection, tmp_path, caplog):
    cfg, job, copy = _copy(collection, tmp_path)
    before = (copy / "collection.json").read_bytes()
    shutil.rmtree(copy / "tokens" / "_traits")  # an output written before summaries
    with caplog.at_level(logging.WARNING, logger="genart.market"):
        write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))
    assert (copy / "collection.json").read_bytes() == before
    assert "3 of 3 shards have no trait summary in tokens/_traits/" in caplog.text


def test_a_missing_or_bad_summary_falls_back_for_that_shard_only(collection, tmp_path, caplog):
    cfg, job, copy = _copy(collection, tmp_path)
    before = (copy / "collection.json").read_bytes()
    (copy / "tokens/_traits/part-00001.json").unlink()
    (copy / "tokens/_traits/part-00002.json").write_text("{not json")
    for i in range(0, 25):  # shard 0 keeps a good summary: its tokens are never read
        (copy / "tokens" / f"{i}.json").unlink()
    with caplog.at_level(logging.WARNING, logger="genart.market"):
        write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))
    assert (copy / "collection.json").read_bytes() == before
    assert "tokens/_traits/part-00002.json is not valid JSON" in caplog.text
    assert "2 of 3 shards have no trait summary" in caplog.text
    # a summary of another range (e.g. a different shard_size) is not trusted either
    summary = json.loads((copy / "tokens/_traits/part-00000.json").read_text())
    (copy / "tokens/_traits/part-00000.json").write_text(json.dumps({**summary, "ids": [0, 20]}))
    caplog.clear()
    # shard 0's tokens are gone: the fallback names the first missing one
    with (
        caplog.at_level(logging.WARNING, logger="genart.market"),
        pytest.raises(StorageError, match=r"tokens/0\.json is missing"),
    ):
        write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))
    assert "tokens/_traits/part-00000.json does not describe ids 0..24" in caplog.text


def test_summary_only_for_a_complete_shard_and_a_retry_on_the_same_replica_rewrites_it(collection, tmp_path):
    cfg, meta, out = collection
    again = cfg.model_copy(update={"output": str(tmp_path / "again"), "batch_size": 9})
    replica = GeneratorReplica(again, "job-2", meta["model_id"])
    spec = Plan.from_config(again, meta["num_classes"]).shard(1)
    # a first attempt that dies after one batch: its tokens are there, no summary yet
    cls = np.array(spec.class_ids[:9])
    replica.tokens.write(
        1, Batch(spec.ids[:9], spec.seeds[:9], cls, replica.bundle.generate(spec.seeds[:9], cls))
    )
    assert (tmp_path / "again/tokens/25.json").exists()
    assert not (tmp_path / "again/tokens/_traits").exists()
    # the retry on the same replica starts the count again: the same bytes as the one-attempt job
    replica.run_shard(spec)
    summary = "tokens/_traits/part-00001.json"
    assert (tmp_path / "again" / summary).read_bytes() == (out / summary).read_bytes()
    assert json.loads((tmp_path / "again" / summary).read_text())["items"] == SHARD


def test_s3_output_summaries_collection_and_verify(collection, s3_bucket, tmp_path):
    """Through s3fs against the moto server: one listing of _traits/, batched reads, verify's token checks."""
    local, meta, out = collection
    uri = f"{s3_bucket}/coll"
    cfg = market_cfg(local.model, uri)
    fs, root = get_fs(uri)
    job, _ = prepare_output(Output.open(uri), cfg, read_meta(local.model, None), False, "job-s3")
    run_without_ray(cfg, meta, job)
    fs.pipe_file(f"{root}/_SUCCESS", json.dumps({"count": COUNT, "shards": 3}).encode())
    assert sorted(fs.ls(f"{root}/tokens/_traits", detail=False)) == [
        f"{root}/tokens/_traits/part-{k:05d}.json" for k in range(3)
    ]
    record = json.loads(fs.cat_file(f"{root}/collection.json"))
    assert record["rarity"] == json.loads((out / "collection.json").read_text())["rarity"]
    assert verify(uri) == []
    fs.rm_file(f"{root}/tokens/31.json")
    fs.pipe_file(f"{root}/tokens/40.json", b"[]")
    assert verify(uri) == ["id 31: tokens/31.json is missing", "id 40: tokens/40.json is not a JSON object"]


def test_interleaved_and_concurrent_slices_on_one_writer_give_the_same_summaries(collection, tmp_path):
    """Slices of batches in any order, from several encode threads at once, and a batch of a failed
    attempt landing while the next shard is written: each shard's summary is the one-pass bytes."""
    cfg, meta, out = collection
    again = cfg.model_copy(update={"output": str(tmp_path / "again")})
    replica = GeneratorReplica(again, "job-3", meta["model_id"])
    plan = Plan.from_config(again, meta["num_classes"])

    def batch(k: int, lo: int, hi: int) -> None:
        spec = plan.shard(k)
        cls, seeds = np.array(spec.class_ids[lo:hi]), spec.seeds[lo:hi]
        replica.tokens.write(k, Batch(spec.ids[lo:hi], seeds, cls, replica.bundle.generate(seeds, cls)))

    batch(0, 0, 10)
    batch(1, 0, 25)
    batch(0, 10, 25)
    with ThreadPoolExecutor(max_workers=4) as pool:  # shard 2 (ids 50..59) in 2-item slices, last first
        list(pool.map(lambda lo: batch(2, lo, lo + 2), [8, 6, 4, 2, 0]))
    for k in (0, 1, 2):
        summary = f"tokens/_traits/part-{k:05d}.json"
        assert (tmp_path / "again" / summary).read_bytes() == (out / summary).read_bytes()
