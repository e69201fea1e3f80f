"""Regeneration is bit-exact on the CPU (no Ray): an item's bytes depend only on the bundle, the job and its id,
whatever batch size, shard size, thread count or process made it, and `load_bundle(...).generate([seed], [c])`
returns exactly the stored pixels. Models: a conditional DCGAN (the shipped width), a self-attention GAN
(RGB) and a conditional VAE decoder; the filtered path (quality score + near-duplicates) too.

Untrained generators make nearly flat images (pixel std 0.5), where rounding almost never flips; the test
bundles scale BatchNorm's gamma by 4 so pixels spread like a trained model's (std ~66). With the previous
batched forward, these bundles change bytes in 14 (DCGAN, 512 ids), 4 (SAGAN) and 2 (VAE, 128 ids) items
between batch 1 and batch 256.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import genart
from genart.bundle import read_meta, save_untrained_bundle
from genart.filters.dedupe import HashIndex
from genart.filters.score import DigitsScorer
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.ids import item_seeds
from genart.images import decode

SPECS = {
    "dcgan": {
        "arch": "dcgan",
        "image_size": 32,
        "channels": 1,
        "latent_dim": 64,
        "num_classes": 10,
        "g_width": 32,
        "attention": False,
    },
    "sagan": {
        "arch": "dcgan",
        "image_size": 32,
        "channels": 3,
        "latent_dim": 64,
        "num_classes": 10,
        "g_width": 32,
        "attention": True,
    },
    "vae": {"arch": "vae", "image_size": 32, "channels": 1, "latent_dim": 16, "num_classes": 10, "width": 32},
}
N = 512  # the DCGAN's ids; the other models use 128 (fewer forwards on a 2-core machine)
COUNT = {"dcgan": N, "sagan": 128, "vae": 128}


def make_bundle(uri: str, arch: str, discriminator: bool = False) -> str:
    """A random-init bundle of `arch` whose BatchNorm gammas are scaled by 4 (trained-like pixel spread)."""
    save_untrained_bundle(uri, SPECS[arch], seed=3, discriminator=discriminator, bn_gain=4.0)
    return uri


@pytest.fixture
def threads():
    """Restores torch's thread count (the replica sets it from cpus_per_replica)."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _digests(images: np.ndarray) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]


@pytest.mark.parametrize("arch", sorted(SPECS))
def test_item_pixels_do_not_depend_on_batch_or_threads(arch, tmp_path, threads):
    bundle = genart.load_bundle(make_bundle(str(tmp_path / arch), arch))
    n = COUNT[arch]
    ids = np.arange(n)
    seeds, cls = item_seeds(0, ids), ids % 10
    results = {}
    for n_threads, batch in ((1, 1), (1, 3), (2, 3), (1, 64), (2, 256)):
        torch.set_num_threads(n_threads)
        images = np.concatenate(
            [bundle.generate(seeds[lo : lo + batch], cls[lo : lo + batch]) for lo in range(0, n, batch)]
        )
        results[(n_threads, batch)] = _digests(images)
    reference = results[(1, 1)]
    for key, digests in results.items():
        differing = [i for i in range(n) if digests[i] != reference[i]]
        assert differing == [], f"threads, batch = {key}: items {differing[:10]} differ from batch 1"
    assert torch.get_num_threads() == 2  # the thread count the caller set is kept


def _run(make_cfg, bundle: str, out, count: int = N, **kw) -> dict[int, tuple]:
    """Every shard of the job through one GeneratorReplica -> {id: (seed, class_id, sha256, score)}; the files
    are read back through `paths`, {id: path}."""
    cfg = make_cfg(bundle, str(out), count=count, **kw)
    meta = read_meta(bundle, None)
    index = HashIndex(cfg.dedupe.max_distance) if cfg.dedupe.max_distance is not None else None
    replica = GeneratorReplica(cfg, "job", meta["model_id"], claim=None if index is None else index.claim)
    plan = Plan.from_config(cfg, 10)
    rows, paths = {}, {}
    for shard in range(plan.num_shards):
        replica.run_shard(plan.shard(shard))
        table = pq.read_table(out / "metadata" / f"part-{shard:05d}.parquet").to_pylist()
        rows.update({r["id"]: (r["seed"], r["class_id"], r["sha256"], r.get("score")) for r in table})
        paths.update({r["id"]: out / r["path"] for r in table})
    return rows, paths


@pytest.mark.parametrize("arch", ["dcgan", "sagan", "vae"])
def test_stored_bytes_and_regeneration_are_exact(arch, tmp_path, make_cfg, threads):
    """The issue's case: count 512, shard 256 and batch 256 against shard 512 / batch 1 and shard 100 /
    batch 3 on two threads; then every stored PNG equals load_bundle().generate([seed], [class_id])."""
    bundle = make_bundle(str(tmp_path / "bundle"), arch)
    n = COUNT[arch]
    a, paths = _run(make_cfg, bundle, tmp_path / "a", n, shard_size=256, batch_size=256)
    b, _ = _run(make_cfg, bundle, tmp_path / "b", n, shard_size=512, batch_size=1)
    c, _ = _run(make_cfg, bundle, tmp_path / "c", n, shard_size=100, batch_size=3, cpus_per_replica=2)
    assert sorted(a) == list(range(n))
    assert a == b == c
    regen = genart.load_bundle(bundle)
    torch.set_num_threads(2)  # a user's process: its own thread count
    for i, (seed, class_id, _, _) in a.items():
        stored = decode(paths[i].read_bytes())
        again = regen.generate([seed], [class_id])[0]
        assert np.array_equal(stored, again), f"item {i} (seed {seed}) does not regenerate exactly"


def test_filtered_items_are_exact(tmp_path, make_cfg, threads):
    """Rejection sampling (discriminator score + near-duplicates): the kept draw, its seed, score and bytes are
    the same in any batch, and the stored seed regenerates the stored pixels."""
    bundle = make_bundle(str(tmp_path / "bundle"), "dcgan", discriminator=True)
    filters = {"filter": {"min_score": 0.5, "scorer": "discriminator"}, "dedupe": {"max_distance": 0}}
    a, paths = _run(make_cfg, bundle, tmp_path / "a", 128, shard_size=128, batch_size=128, **filters)
    b, _ = _run(make_cfg, bundle, tmp_path / "b", 128, shard_size=50, batch_size=7, **filters)
    assert a == b
    plan_seeds = item_seeds(7, np.arange(128))
    assert any(a[i][0] != plan_seeds[i] for i in a), "no item was redrawn: the filter did not run"
    regen = genart.load_bundle(bundle)
    for i in range(0, 128, 9):
        seed, class_id, _, _ = a[i]
        assert np.array_equal(decode(paths[i].read_bytes()), regen.generate([seed], [class_id])[0])


@pytest.mark.slow  # a guard: the digits scores were already batch-independent before per-item scoring
def test_digits_scores_do_not_depend_on_batch(tmp_path):
    uri = make_bundle(str(tmp_path / "bundle"), "dcgan")
    ids = np.arange(300)
    images = genart.load_bundle(uri).generate(item_seeds(0, ids), ids % 10)
    scorer = DigitsScorer(10)
    whole = scorer(images, ids % 10)
    parts = np.concatenate([scorer(images[lo : lo + 7], ids[lo : lo + 7] % 10) for lo in range(0, 300, 7)])
    assert whole.tobytes() == parts.tobytes()


def test_bf16_engine_is_exact_against_itself(tmp_path, threads):
    """precision bf16 (part of the job's identity) regenerates exactly with the same precision on a CPU."""
    from genart.config.generate import InferenceConfig

    uri = make_bundle(str(tmp_path / "bundle"), "dcgan")
    bundle = genart.load_bundle(uri, inference=InferenceConfig(precision="bf16"))
    ids = np.arange(96)
    seeds, cls = item_seeds(0, ids), ids % 10
    whole = bundle.generate(seeds, cls)
    torch.set_num_threads(2)
    alone = np.concatenate([bundle.generate(seeds[i : i + 1], cls[i : i + 1]) for i in range(96)])
    assert np.array_equal(whole, alone)
    assert not np.array_equal(whole, genart.load_bundle(uri).generate(seeds, cls))  # bf16 did run


def test_the_digits_scorer_fits_and_scores_alike_whatever_blas_threads_the_process_has():
    from threadpoolctl import threadpool_limits

    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 1), dtype=np.uint8)
    ids = np.arange(40) % 10
    with threadpool_limits(limits=1):
        one = DigitsScorer(10)
        s_one = one(images, ids)
    with threadpool_limits(limits=2):
        two = DigitsScorer(10)
        s_two = two(images, ids)
    assert one.clf.coef_.tobytes() == two.clf.coef_.tobytes() and s_one.tobytes() == s_two.tobytes()
