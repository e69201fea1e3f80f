"""`genart demo`: the main job on embedded defaults, on a local Ray this command starts.

1. train a small class-conditional digits GAN (Ray Train, 1 worker),
2. generate a collection from it with 2 GeneratorReplica actors,
3. write a contact sheet of the first 100 images and print where everything is.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pyarrow.parquet as pq
from pydantic import ValidationError

from genart.config.bounds import int_in
from genart.config.generate import GenerateConfig
from genart.config.loader import format_validation_error
from genart.config.train import TrainConfig
from genart.errors import ConfigError
from genart.images import decode, grid_png
from genart.ray_session import ray_session
from genart.storage import layout
from genart.storage.fs import get_fs, join

log = logging.getLogger(__name__)

MAX_STEPS = 100_000  # training steps (the default, 1200, takes a few minutes on a laptop)
MAX_COUNT = 1_000_000  # images the demo generates


def check_demo_args(out: str, steps: int, count: int) -> None:
    """ConfigError for a `--steps`/`--count` outside their bounds or an `--out` that is no local folder."""
    int_in("--steps", steps, 1, MAX_STEPS)
    int_in("--count", count, 1, MAX_COUNT)
    if "://" in out:
        raise ConfigError(f"--out {out}: the demo writes to a local folder; give a path, not a URI")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(
            f"--out {out}: exists and is not a folder; give a folder (it is created if missing)"
        )


def demo_configs(out: str, steps: int, count: int) -> tuple[TrainConfig, GenerateConfig]:
    """The demo's train and generate configs; ConfigError (not a traceback) if the arguments break them."""
    try:
        return _demo_configs(out, steps, count)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "genart demo")) from None


def _demo_configs(out: str, steps: int, count: int) -> tuple[TrainConfig, GenerateConfig]:
    train_cfg = TrainConfig.model_validate(
        {
            "kind": "train",
            "output": join(out, "train"),
            "model": {"arch": "dcgan", "num_classes": 10, "latent_dim": 64, "g_width": 32, "d_width": 32},
            "train": {
                "steps": steps,
                "batch_size": 64,
                "lr_d": 0.0004,
                "checkpoint_every": max(steps // 2, 1),
                "log_every": 100,
            },
            "scaling": {"num_workers": 1, "cpus_per_worker": 1},
        }
    )
    gen_cfg = GenerateConfig.model_validate(
        {
            "kind": "generate",
            "model": join(out, "train", "model"),
            "output": join(out, "collection"),
            "count": count,
            "replicas": 2,
            "shard_size": 100,
            "batch_size": 100,
        }
    )
    return train_cfg, gen_cfg


def contact_sheet(output: str, path: str, n: int = 100) -> str:
    """A 10-column grid of items 0..n-1 of a generation output, read back through its Parquet metadata."""
    fs, root = get_fs(output)
    first = pq.read_table(join(root, layout.metadata_path(0)), filesystem=fs, columns=["id", "path"])
    rows = sorted(zip(first.column("id").to_pylist(), first.column("path").to_pylist()))[:n]
    images = []
    for _, rel in rows:
        images.append(decode(fs.cat_file(join(root, rel))))  # the demo's digits are grayscale: (H, W, 1)
    with open(path, "wb") as f:
        f.write(grid_png(np.stack(images), cols=10))
    return path


def run_demo(out: str, steps: int = 1200, count: int = 1000) -> dict:
    """Train, generate, write the contact sheet. ConfigError for arguments out of bounds (nothing written)."""
    from genart.generation.runner import generate
    from genart.training.trainer import train

    check_demo_args(out, steps, count)
    train_cfg, gen_cfg = demo_configs(out, steps, count)
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    with ray_session(None, num_cpus=2):
        log.info("[1/3] training a class-conditional digits GAN for %d steps (Ray Train, 1 worker)", steps)
        result = train(train_cfg)
        log.info("[2/3] generating %d images with 2 replicas", count)
        summary = generate(gen_cfg)
    sheet = contact_sheet(gen_cfg.output, join(out, "contact_sheet.png"))
    log.info("[3/3] contact sheet of the first 100 written")
    lines = [
        f"demo finished in {time.perf_counter() - start:.0f}s",
        f"  model bundle     {result.bundle_uri}",
        f"  training grid    {train_cfg.output}/train/checkpoint_*/samples.png",
        f"  collection       {gen_cfg.output}  ({summary.count} images, {summary.images_per_s:.0f} images/s)",
        f"  metadata         {gen_cfg.output}/metadata/part-*.parquet",
        f"  contact sheet    {sheet}",
        f"  check it         genart verify {gen_cfg.output}",
    ]
    print("\n".join(lines))  # noqa: T201 - the demo's final report is user-facing output
    return {"bundle": result.bundle_uri, "summary": summary, "contact_sheet": sheet}
