"""`genart bench train-data`: training samples/s with the digits in memory vs read from object storage.

moto's S3 server (on 127.0.0.1, a free port) holds the digits twice: as an image folder of PNG files and as
Parquet with the Hugging Face Image struct and a label column. The cGAN digits config then trains for the
same steps from each source, with 1 and with 2 Ray Train workers (0.5 CPU each).

What it shows: `genart.data.sources.build_dataset` lists, reads and decodes the whole source and
materialises it in Ray's object store before `fit()`, and each worker caches its shard in memory on the
first pass, so object storage costs start-up time (the `data prep` column, and the first logging window
where a worker pulls its shard), not steady-state samples/s.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genart.bench.common import TRAIN_CONFIG, print_table
from genart.config import load_config
from genart.errors import GenartError

BUCKET = "genart-bench"
AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class RunStats:
    """One training run, reduced to what the table shows."""

    source: str
    workers: int
    prep_s: float  # build_dataset alone: list + read + decode + materialise
    first_per_worker: float  # samples/s per worker in the first logging window (includes the shard pull)
    steady_per_worker: float  # median of the windows after the first
    seconds: float  # train() end to end (Ray Train start-up, data, steps, export)


def window_rates(metrics: list[dict], workers: int) -> tuple[float, float]:
    """(first window, steady state) samples/s per worker from a run's metrics.

    Each metric's samples_per_s counts every worker's samples; steady state is the median of the windows
    after the first (the first also holds the worker's first pass over its data shard)."""
    if not metrics:
        raise ValueError("no training metrics: raise --steps above the logging interval")
    rates = [m["samples_per_s"] / workers for m in metrics]
    return rates[0], float(np.median(rates[1:] or rates))


def table_rows(runs: list[RunStats]) -> list[tuple]:
    """One row per run; the ratio is steady samples/s against the in-memory run with the same workers."""
    memory = {r.workers: r.steady_per_worker for r in runs if r.source == "memory"}
    rows = []
    for r in runs:
        base = memory.get(r.workers)
        ratio = f"{r.steady_per_worker / base:.2f}" if base else "-"
        rows.append(
            (
                r.source,
                r.workers,
                f"{r.prep_s:.1f}",
                f"{r.first_per_worker:.0f}",
                f"{r.steady_per_worker:.0f}",
                ratio,
                f"{r.seconds:.1f}",
            )
        )
    return rows


HEADER = (
    "source",
    "workers",
    "data prep s",
    "first window samples/s/worker",
    "steady samples/s/worker",
    "vs memory",
    "train() s",
)


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with AWS_* pointing at it (Ray workers started inside inherit them)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise GenartError(
            "`genart bench train-data` needs moto (a dev dependency): pip install -e '.[dev]' or pip install "
            "'moto[server]'"
        ) from exc
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    werkzeug = logging.getLogger("werkzeug")  # moto's HTTP server logs every request at INFO
    werkzeug_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server.start()
    saved = {k: os.environ.get(k) for k in AWS_VARS}
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench-key-id",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        yield endpoint
    finally:
        server.stop()
        werkzeug.setLevel(werkzeug_level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def upload_digits(bucket: str, image_size: int, parquet_files: int = 4) -> tuple[dict[str, str], int]:
    """The digits as PNG files (s3://BUCKET/images/) and as Parquet (s3://BUCKET/parquet/).

    Returns ({source name: URI}, images uploaded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from genart.data.digits import load_digits_arrays
    from genart.storage.fs import get_fs

    fs, _ = get_fs(f"s3://{bucket}")
    fs.mkdir(bucket)
    images, labels = load_digits_arrays(image_size)
    pngs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im[:, :, 0]).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    fs.pipe({f"{bucket}/images/{i:05d}.png": b for i, b in enumerate(pngs)})
    for k, idx in enumerate(np.array_split(np.arange(len(pngs)), parquet_files)):
        table = pa.table(
            {
                "image": [{"bytes": pngs[i], "path": f"{i:05d}.png"} for i in idx],
                "label": pa.array(labels[idx].astype(np.int64)),
            }
        )
        with fs.open(f"{bucket}/parquet/train-{k:05d}-of-{parquet_files:05d}.parquet", "wb") as f:
            pq.write_table(table, f)
    sources = {
        "memory": "digits",
        "s3 image folder": f"s3://{bucket}/images/",
        "s3 parquet": f"s3://{bucket}/parquet",
    }
    return sources, len(pngs)


def _run(cfg, source: str, uri: str, workers: int, out: str) -> RunStats:
    from genart.data.sources import build_dataset
    from genart.training.trainer import train

    cfg = cfg.model_copy(deep=True)
    cfg.output, cfg.data.source, cfg.scaling.num_workers = out, uri, workers
    if source == "s3 image folder":  # an image folder carries no labels: the same GAN, unconditional
        cfg.model.num_classes = 0
    t0 = time.perf_counter()
    build_dataset(cfg)  # timed alone; train() repeats it
    prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = train(cfg)
    seconds = time.perf_counter() - t0
    first, steady = window_rates(res.metrics, workers)
    return RunStats(source, workers, prep, first, steady, seconds)


def bench_train_data(steps: int = 120, workers: tuple[int, ...] = (1, 2)) -> list[RunStats]:
    """Train the cGAN digits config from each source with each worker count; print the table."""
    from genart.ray_session import ray_session

    base = load_config(
        TRAIN_CONFIG,
        [f"train.steps={steps}", f"train.log_every={max(steps // 6, 1)}", f"train.checkpoint_every={steps}"],
    )
    tmp = tempfile.mkdtemp(prefix="genart-bench-data-")
    runs: list[RunStats] = []
    try:
        with moto_s3():
            t0 = time.perf_counter()
            sources, count = upload_digits(BUCKET, base.model.image_size)
            upload_s = time.perf_counter() - t0
            with ray_session(None, num_cpus=2):  # after moto: the workers inherit AWS_*
                for n in workers:
                    for name, uri in sources.items():
                        runs.append(_run(base, name, uri, n, f"{tmp}/{name.replace(' ', '-')}-{n}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(
        f"training data source, {TRAIN_CONFIG.name}, batch {base.train.batch_size}/worker, {steps} steps, "
        f"0.5 CPU per worker (steady state = median of the logging windows after the first)",
        table_rows(runs),
        HEADER,
    )
    print(  # noqa: T201 - benchmark output
        f"  upload to moto S3: {count} PNG files + 4 Parquet files in {upload_s:.1f}s; the image folder carries "
        "no labels (its runs train the same GAN unconditionally), Parquet carries the label column"
    )
    return runs
