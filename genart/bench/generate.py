"""`genart bench train|generate` (and `make bench`): side-by-side throughput tables in one run.

Benchmarks, not tests: the machine is shared and noisy, so compare the ratios within one run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from genart.bench.common import GENART, bench_bundle, print_table, timed
from genart.config.generate import GenerateConfig
from genart.ids import item_seeds
from genart.images import encode


# ---------------------------------------------------------------- generation
def _plain_generate(bundle_uri: str, count: int, out: str, batch: int = 256) -> float:
    """The classic loop: generate a batch, save each image with PIL, write the metadata once at the end."""
    from genart.bundle import load_bundle

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_uri)
    os.makedirs(out, exist_ok=True)
    rows = []
    for start in range(0, count, batch):
        ids = np.arange(start, min(start + batch, count))
        seeds = item_seeds(0, ids)
        imgs = bundle.generate(seeds, ids % 10)
        for i, s, img in zip(ids, seeds, imgs):
            path = f"{out}/{i:010d}.png"
            with open(path, "wb") as f:
                f.write(encode(img, "png"))
            rows.append((int(i), int(s), path))
    pq.write_table(
        pa.table({"id": [r[0] for r in rows], "seed": [r[1] for r in rows], "path": [r[2] for r in rows]}),
        f"{out}/metadata.parquet",
    )
    return count / (time.perf_counter() - t0)


class _RayDataGenerator:
    """Ray Data's callable-class pattern: the generator loads once per actor, then maps batches."""

    def __init__(self, bundle_uri: str):
        from genart.bundle import load_bundle

        torch.set_num_threads(1)
        self.bundle = load_bundle(bundle_uri)

    def __call__(self, batch: dict) -> dict:
        ids = batch["id"]
        seeds = item_seeds(0, ids)
        imgs = self.bundle.generate(seeds, ids % 10)
        return {"id": ids, "seed": seeds, "image": [encode(im, "png") for im in imgs]}


def _ray_data_generate(bundle_uri: str, count: int, out: str) -> float:
    import ray
    import ray.data

    from genart.ray_session import ray_session

    t0 = time.perf_counter()
    with ray_session(None, num_cpus=2, dashboard=False):
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.range(count).map_batches(
            _RayDataGenerator,
            fn_constructor_args=(bundle_uri,),
            batch_size=256,
            compute=ray.data.ActorPoolStrategy(size=2),
            num_cpus=0.5,  # 1 CPU each would leave none for the read/write tasks: a deadlock on 2 cores
        )
        ds.write_parquet(out)  # image bytes + metadata, Ray Data's own writer
    return count / (time.perf_counter() - t0)


def _genart_generate(
    bundle_uri: str, count: int, out: str, replicas: int, in_process_below_s: float = 0.0
) -> tuple[float, float, float]:
    """(images/s end to end, seconds to the first commit, images/s after it) of generate() in this process:
    Ray replicas (a fresh local Ray, or `genart up`'s when one runs) with in_process_below_s 0, else the
    in-process path when the job is estimated under it."""
    from genart.generation.runner import generate

    cfg = GenerateConfig(
        kind="generate",
        model=bundle_uri,
        output=out,
        count=count,
        replicas=replicas,
        shard_size=1000,
        batch_size=256,
        cpus_per_replica=1,
        in_process_below_s=in_process_below_s,
    )
    t0 = time.perf_counter()
    summary = generate(cfg, progress=False)
    total = time.perf_counter() - t0
    # steady state: what follows the first committed shard (Ray start-up and bundle loading excluded)
    steady = (count - cfg.shard_size) / max(total - summary.first_commit_s, 1e-9)
    return count / total, summary.first_commit_s, steady


def _warm_generate(bundle_uri: str, count: int, out: str, home: str) -> tuple[float, float, float]:
    """_genart_generate on `genart up`'s warm replicas (2, started here with GENART_HOME=home, stopped after)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GENART_WARM")}
    env["GENART_HOME"] = home
    saved = os.environ.get("GENART_HOME")
    timed([GENART, "up", "--model", bundle_uri], env, home)
    os.environ["GENART_HOME"] = home
    try:
        return _genart_generate(bundle_uri, count, out, 2)
    finally:
        timed([GENART, "down"], env, home)
        if saved is None:
            os.environ.pop("GENART_HOME", None)
        else:
            os.environ["GENART_HOME"] = saved


def _limit_per_core(bundle_uri: str, n: int = 4096, batch: int = 256) -> float:
    """generate + encode alone, one thread, in process: the per-core ceiling."""
    from genart.bundle import load_bundle

    torch.set_num_threads(1)
    bundle = load_bundle(bundle_uri)
    bundle.generate(item_seeds(0, np.arange(batch)), np.arange(batch) % 10)  # warm-up
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        ids = np.arange(start, start + batch)
        for img in bundle.generate(item_seeds(0, ids), ids % 10):
            encode(img, "png")
    return n / (time.perf_counter() - t0)


def _batched_previous(bundle, seeds, class_ids) -> np.ndarray:
    """The path before bit-exact generation: one forward for the whole batch on all threads (an item's bytes
    then depend on the batch it came in). Kept here only to measure what exactness costs."""
    from genart.models.sampling import inputs, to_uint8

    with torch.inference_mode():
        z, y = inputs(bundle.generator, seeds, class_ids)
        return to_uint8(bundle.generator(z, y))


def bench_exact(bundle_uri: str | None = None, n: int = 2048, batch: int = 256, rounds: int = 3) -> dict:
    """images/s of generate + PNG encode in one process, one thread, on three paths (interleaved rounds, best
    of each): the batched forward before bit-exact generation, the one-item-at-a-time path ("item", what
    outputs without a recorded cpu_path were made with), and the block16 path `genart generate` and
    `load_bundle(...).generate` run now; for each, how many items change bytes when the same ids run in
    batches of 3 or one at a time."""
    from genart.bundle import load_bundle

    tmp = tempfile.mkdtemp(prefix="genart-bench-")
    uri = bundle_uri or bench_bundle(tmp)
    item, block = load_bundle(uri, cpu_path="item"), load_bundle(uri)
    torch.set_num_threads(1)
    ids = np.arange(n)
    seeds, cls = item_seeds(0, ids), ids % 10
    paths = {
        "previous": lambda s, c: _batched_previous(item, s, c),
        "item": item.generate,
        "block16": block.generate,
    }
    best = dict.fromkeys(paths, float("inf"))
    images: dict = {}
    for _ in range(rounds):
        for name, fn in paths.items():
            fn(seeds[:batch], cls[:batch])  # warm-up
            t0 = time.perf_counter()
            out = [fn(seeds[lo : lo + batch], cls[lo : lo + batch]) for lo in range(0, n, batch)]
            for img in (im for part in out for im in part):
                encode(img, "png")
            best[name] = min(best[name], time.perf_counter() - t0)
            images[name] = np.concatenate(out)
    r = {name: n / sec for name, sec in best.items()}
    for name, fn in paths.items():  # the same ids in batches of 3 and alone: which items change bytes?
        other = [
            np.concatenate([fn(seeds[lo : lo + b], cls[lo : lo + b]) for lo in range(0, n, b)])
            for b in (3, 1)
        ]
        changed = np.zeros(n, bool)
        for o in other:
            changed |= (o != images[name]).reshape(n, -1).any(1)
        r[f"{name}_items_changed"] = int(changed.sum())
    labels = {
        "previous": "previous: one batched forward per batch",
        "item": "item: each item alone, NCHW (outputs without cpu_path)",
        "block16": "block16: blocks of 16 rows, NHWC (now)",
    }
    print_table(
        f"bit-exact generation: {n} images, batch {batch}, generate + PNG encode, 1 thread; bundle "
        f"{bundle_uri or 'untrained cgan-digits architecture'}",
        [(labels[k], f"{r[k]:.0f}", f"{r[k] / r['previous']:.2f}", r[f"{k}_items_changed"]) for k in paths],
        ("path", "images/s", "vs previous", f"of {n} items, bytes change in batches of 3 or alone"),
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return r


def bench_xmp(bundle_uri: str, n: int = 2048, rounds: int = 7) -> dict:
    """What the XMP disclosure (provenance.xmp) costs, per format, in one process on one thread, over the same
    generated images: seconds to encode them and, separately, to stamp the encoded bytes (best of `rounds`
    each, since two whole runs on a shared machine differ by more than the stamp costs), as images/s of encode
    alone and of encode + stamp, and the bytes it adds per image."""
    from genart.bundle import load_bundle
    from genart.market.xmp import JOB_ID_LIKE, Provenance

    torch.set_num_threads(1)
    ids = np.arange(n)
    seeds = item_seeds(0, ids)
    images = load_bundle(bundle_uri).generate(seeds, ids % 10)
    stamp = Provenance("0" * 64, JOB_ID_LIKE)
    r: dict = {}
    for fmt in ("png", "webp", "jpeg"):
        t_encode = t_stamp = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            blobs = [encode(im, fmt) for im in images]
            t1 = time.perf_counter()
            stamped = stamp.stamp_all(blobs, fmt, ids, seeds)
            t_encode, t_stamp = min(t_encode, t1 - t0), min(t_stamp, time.perf_counter() - t1)
        plain, added = sum(map(len, blobs)) / n, (sum(map(len, stamped)) - sum(map(len, blobs))) / n
        r[fmt] = {"off": n / t_encode, "on": n / (t_encode + t_stamp), "stamp_us": t_stamp / n * 1e6,
                  "bytes_plain": plain, "bytes_added": added}  # fmt: skip
    print_table(
        f"XMP disclosure (provenance.xmp): {n} images, encode alone vs encode + XMP, 1 thread",
        [
            (
                fmt,
                f"{v['off']:.0f}",
                f"{v['on']:.0f}",
                f"{v['on'] / v['off'] - 1:+.1%}",
                f"{v['stamp_us']:.1f}",
                f"{v['bytes_plain']:.0f} + {v['bytes_added']:.0f}",
            )
            for fmt, v in r.items()
        ],  # fmt: skip
        ("format", "images/s off", "images/s on", "change", "XMP us/image", "bytes/image"),
    )
    return r


def bench_generate(count: int = 30000) -> dict:
    tmp = tempfile.mkdtemp(prefix="genart-bench-")
    bundle = bench_bundle(tmp)
    cores = os.cpu_count() or 1
    r: dict = {"count": count, "bundle": bundle, "cores": cores}
    r["exact"] = bench_exact(bundle)
    torch.set_num_threads(cores)
    r["limit"] = _limit_per_core(bundle) * cores
    torch.set_num_threads(cores)
    r["plain"] = _plain_generate(bundle, count, f"{tmp}/plain")
    r["ray_data"] = _ray_data_generate(bundle, count, f"{tmp}/raydata")
    r["here"], r["startup_here"], r["steady_here"] = _genart_generate(bundle, count, f"{tmp}/h", 2, 3600.0)
    r["cold"], r["startup_cold"], r["steady_cold"] = _genart_generate(bundle, count, f"{tmp}/c", 2)
    os.makedirs(f"{tmp}/home")
    r["warm"], r["startup_warm"], r["steady_warm"] = _warm_generate(bundle, count, f"{tmp}/w", f"{tmp}/home")
    r["xmp"] = bench_xmp(bundle)
    rows = [
        ("plain loop (batch, PIL save per image, metadata at end)", r["plain"]),
        ("Ray Data map_batches on a 2-actor pool + write_parquet", r["ray_data"]),
        ("genart generate in this process (2 replica threads, no Ray)", r["here"]),
        ("genart generate, 2 Ray replicas, cold (a fresh local Ray)", r["cold"]),
        ("genart generate, 2 Ray replicas, warm (genart up)", r["warm"]),
        (f"limit: per-core generate+encode x {cores} cores", r["limit"]),
        (f"limit before block16 (the item path) x {cores} cores", r["exact"]["item"] * cores),
    ]
    print_table(
        f"generation, {count} digits images, png, end to end (start-up included, torch already imported); "
        f"bundle {bundle}",
        [(name, f"{v:.0f}", f"{v / r['plain']:.2f}", f"{v / r['limit']:.0%}") for name, v in rows],
        ("pipeline", "images/s", "vs plain", "of limit"),
    )
    print(  # noqa: T201
        "  targets: 30,000 images at least 1.50x plain, cold and warm\n"
        + "".join(
            f"  {name}: first commit after {r['startup_' + k]:.1f} s, then {r['steady_' + k]:.0f} images/s "
            f"= {r['steady_' + k] / r['limit']:.0%} of the limit\n"
            for k, name in (("here", "in this process"), ("cold", "Ray cold"), ("warm", "Ray warm"))
        )
        + f"  genart vs Ray Data: {max(r['here'], r['cold']) / r['ray_data']:.2f}x (the faster cold path)"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    Path("out").mkdir(exist_ok=True)
    Path("out/bench-generate.json").write_text(json.dumps(r, indent=2))
    return r
