"""The CPU path a job records (genart/cpu_path.py): new jobs compute items in blocks of 16 rows (NHWC); a job
whose _job.json names no cpu_path keeps the one-item-at-a-time arithmetic its first shards were made with, so
its resumed shards and `load_bundle(uri, cpu_path="item")` give exactly its bytes. No Ray."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import genart
from genart.bundle import read_meta
from genart.cpu_path import CPU_PATH, cpu_path_of
from genart.generation.job import job_record
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.generation.scheduler import ColdPool
from genart.ids import item_seeds
from genart.images import decode
from genart.models.sampling import forward_blocks, inputs, sample
from tests.generation.test_exact import make_bundle


def test_new_jobs_record_block16_and_records_without_the_key_mean_item(tmp_path, make_cfg):
    bundle = make_bundle(str(tmp_path / "b"), "dcgan")
    cfg = make_cfg(bundle, str(tmp_path / "out"))
    record = job_record(cfg, read_meta(bundle, None), "job-1")
    assert record["cpu_path"] == CPU_PATH == "block16"
    assert cpu_path_of(record) == "block16"
    legacy = {k: v for k, v in record.items() if k != "cpu_path"}
    assert cpu_path_of(legacy) == "item"
    with pytest.raises(ValueError, match=r"unknown cpu_path 'fast': one of block16, item"):
        cpu_path_of({**record, "cpu_path": "fast"})
    # the replicas of a resumed job get the record's path
    assert ColdPool(cfg, legacy).args[-1] == "item"
    assert ColdPool(cfg, record).args[-1] == "block16"


def test_an_unknown_cpu_path_is_refused_by_load_bundle(tmp_path):
    bundle = make_bundle(str(tmp_path / "b"), "dcgan")
    with pytest.raises(ValueError, match=r"unknown cpu_path 'nhwc': one of block16, item"):
        genart.load_bundle(bundle, cpu_path="nhwc")


def _shard_pixels(cfg, bundle: str, cpu_path: str) -> tuple[dict, dict]:
    replica = GeneratorReplica(cfg, "job", read_meta(bundle, None)["model_id"], cpu_path=cpu_path)
    replica.run_shard(Plan.from_config(cfg, 10).shard(0))
    rows = pq.read_table(f"{cfg.output}/metadata/part-00000.parquet").to_pylist()
    pixels = {r["id"]: decode(open(f"{cfg.output}/{r['path']}", "rb").read()) for r in rows}
    return {r["id"]: (r["seed"], r["class_id"]) for r in rows}, pixels


def test_each_path_regenerates_its_own_bytes_and_the_paths_differ(tmp_path, make_cfg):
    """A replica on the legacy path writes what load_bundle(cpu_path="item") regenerates, the default one what
    the default regenerates; on this trained-like bundle some items round differently between the two, which
    is why a resumed job must keep its path."""
    bundle = make_bundle(str(tmp_path / "b"), "dcgan")
    n = 256
    made = {}
    for path in ("item", "block16"):
        cfg = make_cfg(bundle, str(tmp_path / path), count=n, shard_size=n, batch_size=100)
        rows, pixels = _shard_pixels(cfg, bundle, path)
        regen = genart.load_bundle(bundle, cpu_path=path)
        ids = sorted(rows)
        again = regen.generate([rows[i][0] for i in ids], [rows[i][1] for i in ids])
        assert all(np.array_equal(pixels[i], again[k]) for k, i in enumerate(ids)), path
        made[path] = pixels
    differing = [i for i in range(n) if not np.array_equal(made["item"][i], made["block16"][i])]
    assert 0 < len(differing) < n // 4  # both paths compute the same image, rounding apart


def test_an_items_floats_do_not_depend_on_its_slot_or_the_rows_beside_it(tmp_path):
    """forward_blocks at the float level (stronger than the bytes): item 0 alone (15 zero rows), at each slot
    of a block among other items, and among other random rows, gives bit-identical floats."""
    bundle = genart.load_bundle(make_bundle(str(tmp_path / "b"), "dcgan"))
    g = bundle.generator
    ids = np.arange(48)
    z, y = inputs(g, item_seeds(0, ids), ids % 10)
    with torch.inference_mode():
        alone = forward_blocks(g, z[:1], y[:1])[0]
        for slot in range(16):
            zz, yy = z[1:17].clone(), y[1:17].clone()
            zz[slot], yy[slot] = z[0], y[0]
            assert torch.equal(forward_blocks(g, zz, yy)[slot], alone), f"slot {slot}"
        others = torch.randn(16, g.latent_dim, generator=torch.Generator().manual_seed(5)) * 3
        others[7] = z[0]
        yy = torch.full((16,), 9)
        yy[7] = y[0]
        assert torch.equal(forward_blocks(g, others, yy)[7], alone)


def test_sample_leaves_a_training_generators_memory_format_alone(tmp_path):
    """The training loop's grid previews call sample() on the live generator: its weights stay NCHW."""
    g = genart.load_bundle(make_bundle(str(tmp_path / "b"), "dcgan"), cpu_path="item").generator
    before = [p.stride() for p in g.parameters()]
    images = sample(g, [1, 2, 3], [0, 1, 2])
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8
    assert [p.stride() for p in g.parameters()] == before
    assert np.array_equal(
        images, genart.load_bundle(make_bundle(str(tmp_path / "c"), "dcgan")).generate([1, 2, 3], [0, 1, 2])
    )
