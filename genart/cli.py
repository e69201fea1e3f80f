"""The `genart` command: parse, load the config, call one library function, map errors to exit codes.

Training, generation, synthesis and benchmarks live here; cluster commands in `cli_cluster.py`,
collection views in `cli_collection.py` (both register on `main`)."""

from __future__ import annotations

import json
import sys

import click

from genart import cli_cluster, cli_collection  # noqa: F401 - their commands register on `main`
from genart.cli_app import SET_HELP, _run, main
from genart.cli_args import float_in, int_in, int_list
from genart.errors import ConfigError

MAX_BENCH_STEPS = 100_000  # training steps of a benchmark
MAX_BENCH_COUNT = 10**7  # images (or committed shards) of a benchmark
MAX_BENCH_INDEX = 10**8  # claims of the dedupe index benchmark (about 20 bytes each)
MAX_IMAGE_SIZE = 8192  # image side `genart plan` assumes without a bundle


@main.command()
@click.argument("config", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1)."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Start over on an output trained by a different config (deletes its checkpoints and bundle).",
)
@_run
def train(config: str, overrides: tuple[str, ...], address: str | None, overwrite: bool) -> None:
    """Train the model a `kind: train` CONFIG describes; export the bundle to OUTPUT/model.

    Running the same command again on the same output continues from the latest checkpoint; train.steps
    may grow to train further, and scaling, address, storage, log_every and checkpoint_every may change.
    Any other difference is refused (exit 2) unless --overwrite.
    """
    from genart.config import load_config
    from genart.training.trainer import train as run_train

    cfg = load_config(config, overrides, expect_kind="train")
    if address:
        cfg.address = address
    result = run_train(cfg, overwrite=overwrite)
    last = result.metrics[-1] if result.metrics else {}
    click.echo(
        f"trained {result.steps} steps on {result.world_size} worker(s) in {result.seconds:.0f}s "
        f"({last.get('samples_per_s', 0):.0f} samples/s); bundle: {result.bundle_uri}"
    )


@main.command()
@click.argument("config", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1)."
)
@click.option("--overwrite", is_flag=True, help="Replace an output written by a different config.")
@_run
def generate(config: str, overrides: tuple[str, ...], address: str | None, overwrite: bool) -> None:
    """Generate COUNT images from a bundle into OUTPUT (resumable, exactly once)."""
    from genart.config import load_config
    from genart.generation.runner import generate as run_generate

    cfg = load_config(config, overrides, expect_kind="generate")
    if address:
        cfg.address = address
    summary = run_generate(cfg, overwrite=overwrite)
    click.echo(json.dumps(summary))


@main.command()
@click.argument("uri")
@_run
def verify(uri: str) -> None:
    """Exit 0 only when the output at URI is complete and every file matches its sha256."""
    from genart.storage.verify import verify as run_verify

    problems = run_verify(uri)
    if problems:
        for p in problems[:50]:
            click.echo(f"FAIL {p}", err=True)
        if len(problems) > 50:
            click.echo(f"... and {len(problems) - 50} more", err=True)
        sys.exit(1)
    click.echo(f"OK {uri}")


@main.command(name="eval")
@click.argument("bundle")
@click.option("--data", default="digits", show_default=True, help="Real data to compare against.")
@click.option("--samples", default=1000, show_default=True, help="Generated images to score.")
@click.option(
    "--out", default=None, help="Folder for eval.json and loss_curves.png (default: beside the bundle)."
)
@_run
def eval_(bundle: str, data: str, samples: int, out: str | None) -> None:
    """Quality report: classifier accuracy per class, Frechet distance, diversity, loss curves."""
    from genart.evaluate import evaluate, format_report

    report = evaluate(bundle, data=data, samples=samples, out=out)
    click.echo(format_report(report))


@main.command()
@click.option("--out", default="out/demo", show_default=True, help="Folder for everything the demo writes.")
@click.option("--steps", default=1200, show_default=True, help="Training steps.")
@click.option("--count", default=1000, show_default=True, help="Images to generate.")
@_run
def demo(out: str, steps: int, count: int) -> None:
    """Train a small class-conditional digits GAN on a local Ray, generate a collection, write a contact sheet."""
    from genart.demo import run_demo

    run_demo(out, steps=steps, count=count)


@main.group()
def bench() -> None:
    """Benchmarks (printed tables; `make bench` runs them)."""


@bench.command(name="train")
@click.option("--steps", default=300, show_default=True)
@click.option(
    "--quality/--no-quality",
    default=True,
    show_default=True,
    help="Also train the shipped cGAN config to out/cgan-digits and score it (~8 min).",
)
@_run
def bench_train(steps: int, quality: bool) -> None:
    """Samples/s: plain PyTorch loop vs Ray Train with 1 and 2 workers; quality of the shipped cGAN config."""
    from genart.benchmarks import bench_train as run

    run(steps=int_in("--steps", steps, 1, MAX_BENCH_STEPS), quality=quality)


@bench.command(name="generate")
@click.option("--count", default=30000, show_default=True)
@_run
def bench_generate(count: int) -> None:
    """Images/s: plain PIL loop, Ray Data pipeline, genart with 1 and 2 replicas, and the machine's limit."""
    from genart.benchmarks import bench_generate as run

    run(count=int_in("--count", count, 1, MAX_BENCH_COUNT))


@bench.command(name="train-data")
@click.option("--steps", default=120, show_default=True)
@_run
def bench_train_data(steps: int) -> None:
    """Samples/s per worker: digits in memory vs an S3 image folder vs S3 Parquet (moto), 1 and 2 workers."""
    from genart.benchmarks_data import bench_train_data as run

    run(steps=int_in("--steps", steps, 1, MAX_BENCH_STEPS))


@main.command(name="plan")
@click.argument("config", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--measure", is_flag=True, help="Generate a sample in-process to measure images/s per replica.")
@click.option("--images-per-s", type=float, default=None, help="Per-replica images/s to assume for the time.")
@click.option("--image-size", default=64, show_default=True, help="Image side when the bundle is unreadable.")
@click.option("--channels", default=3, show_default=True, help="Channels when the bundle is unreadable.")
@click.option("--all-layouts", is_flag=True, help="One row per layout (files, webdataset, parquet).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_run
def plan(
    config: str,
    overrides: tuple[str, ...],
    measure: bool,
    images_per_s: float | None,
    image_size: int,
    channels: int,
    all_layouts: bool,
    as_json: bool,
) -> None:
    """Objects, PUT requests, bytes, S3 cost and time a `kind: generate` CONFIG will take (writes nothing)."""
    from genart.config import load_config
    from genart.generation.cost import format_table, plan_costs
    from genart.storage.layout import LAYOUTS

    int_in("--image-size", image_size, 1, MAX_IMAGE_SIZE)
    if channels not in (1, 3, 4):
        raise ConfigError(f"--channels must be 1, 3 or 4 (grey, RGB, RGBA; got {channels})")
    if images_per_s is not None:
        float_in("--images-per-s", images_per_s, 0, 1e9)
    cfg = load_config(config, overrides, expect_kind="generate")
    estimates = plan_costs(
        cfg,
        measure=measure,
        images_per_s=images_per_s,
        fallback_size=(image_size, channels),
        layouts=LAYOUTS if all_layouts else None,
    )
    click.echo(json.dumps([e.as_dict() for e in estimates], indent=2) if as_json else format_table(estimates))


@bench.command(name="memory")
@click.option("--counts", default="10000,100000", show_default=True, help="Image counts to compare.")
@click.option("--shards", default=100_000, show_default=True, help="Committed shards of the resume check.")
@_run
def bench_memory(counts: str, shards: int) -> None:
    """Driver peak RSS for each count (growth goal: at most 15%) and the resume scan of SHARDS committed shards."""
    from genart.benchmarks_memory import format_report, run

    result = run(
        int_list("--counts", counts, 1, MAX_BENCH_COUNT), int_in("--shards", shards, 1, MAX_BENCH_COUNT)
    )
    click.echo(format_report(result))


@bench.command(name="dedupe")
@click.option("--sizes", default="100000,1000000", show_default=True, help="Index sizes (claims) to measure.")
@click.option("--max-distance", default=6, show_default=True, help="dedupe.max_distance of the index.")
@_run
def bench_dedupe(sizes: str, max_distance: int) -> None:
    """Claims per second of the near-duplicate index (generate's dedupe), in process and via its Ray actor."""
    from genart.benchmarks_dedupe import bench_dedupe as run
    from genart.benchmarks_dedupe import format_report

    sizes_ = int_list("--sizes", sizes, 1, MAX_BENCH_INDEX)
    click.echo(format_report(run(sizes_, int_in("--max-distance", max_distance, 0, 64)), max_distance))


@main.command()
@click.argument("config", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1)."
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a dataset (and candidates) written by a different config."
)
@_run
def synthesize(config: str, overrides: tuple[str, ...], address: str | None, overwrite: bool) -> None:
    """Synthesize a labelled train/validation/test dataset (Hugging Face Parquet + README.md) into OUTPUT."""
    from genart.config import load_config
    from genart.synthesis.runner import synthesize as run_synthesize

    cfg = load_config(config, overrides, expect_kind="synthesize")
    if address:
        cfg.address = address
    summary = run_synthesize(cfg, overwrite=overwrite)
    click.echo(json.dumps(summary))


if __name__ == "__main__":
    main()  # `main` lives in cli_app.py: the commands of every module are registered on it
