"""`genart bench ...`: the benchmark commands (tables of side-by-side ratios; never timed tests)."""

from __future__ import annotations

import click

from genart.cli.app import SET_HELP, _run, main
from genart.config.bounds import int_in, int_list

MAX_BENCH_STEPS = 100_000  # training steps of a benchmark


MAX_BENCH_COUNT = 10**7  # images (or committed shards) of a benchmark


MAX_BENCH_INDEX = 10**8  # claims of the dedupe index benchmark (about 20 bytes each)


MAX_GALLERY_ITEMS = 100_000  # as genart.views.limits (not imported here: the CLI stays light)


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
    from genart.bench.train import bench_train as run

    run(steps=int_in("--steps", steps, 1, MAX_BENCH_STEPS), quality=quality)


@bench.command(name="generate")
@click.option("--count", default=30000, show_default=True)
@_run
def bench_generate(count: int) -> None:
    """Images/s: plain PIL loop, Ray Data pipeline, genart with 1 and 2 replicas (and 1 without the XMP
    disclosure), the machine's limit, and what XMP costs per format."""
    from genart.bench.generate import bench_generate as run

    run(count=int_in("--count", count, 1, MAX_BENCH_COUNT))


@bench.command(name="warm")
@click.option("--small", default=200, show_default=True, help="Images of the warm run (and its plain loop).")
@click.option("--large", default=2000, show_default=True, help="Images of the cold run (and its plain loop).")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds of the four runs (medians).")
@_run
def bench_warm(small: int, large: int, rounds: int) -> None:
    """Whole-process seconds: plain loop vs warm `genart generate` (genart up) and vs a cold one; the warm floor."""
    from genart.bench.warm import bench_warm as run

    run(
        small=int_in("--small", small, 1, MAX_BENCH_COUNT),
        large=int_in("--large", large, 1, MAX_BENCH_COUNT),
        rounds=int_in("--rounds", rounds, 1, 100),
    )


@bench.command(name="train-data")
@click.option("--steps", default=120, show_default=True)
@_run
def bench_train_data(steps: int) -> None:
    """Samples/s per worker: digits in memory vs an S3 image folder vs S3 Parquet (moto), 1 and 2 workers."""
    from genart.bench.train_data import bench_train_data as run

    run(steps=int_in("--steps", steps, 1, MAX_BENCH_STEPS))


@bench.command(name="memory")
@click.option("--counts", default="10000,100000", show_default=True, help="Image counts to compare.")
@click.option("--shards", default=100_000, show_default=True, help="Committed shards of the resume check.")
@_run
def bench_memory(counts: str, shards: int) -> None:
    """Driver peak RSS for each count (growth goal: at most 15%) and the resume scan of SHARDS committed shards."""
    from genart.bench.memory import format_report, run

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
    from genart.bench.dedupe import bench_dedupe as run
    from genart.bench.dedupe import format_report

    sizes_ = int_list("--sizes", sizes, 1, MAX_BENCH_INDEX)
    click.echo(format_report(run(sizes_, int_in("--max-distance", max_distance, 0, 64)), max_distance))


@bench.command(name="art")
@click.argument("data")
@click.option("--steps", default=None, type=int, help="Training steps of each run [default: the config's].")
@click.option("--samples", default=1000, show_default=True, help="Samples the judge scores per run.")
@click.option(
    "--out", default="out/bench-art", show_default=True, help="Where the runs and their reports go."
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_run
def bench_art(data: str, steps: int | None, samples: int, out: str, overrides: tuple[str, ...]) -> None:
    """configs/train/cgan-folder.yaml on DATA (one subfolder per class): judge an untrained model, a run
    without train.augment and a run with it (same steps), side by side; reports under OUT/<run>."""
    from genart.bench.art import bench_art as run

    if steps is not None:
        int_in("--steps", steps, 1, MAX_BENCH_STEPS)
    run(data, steps=steps, samples=samples, out=out, overrides=overrides)


@bench.command(name="gallery")
@click.option("--counts", default="1000,100000", show_default=True, help="Items on the curation page.")
@_run
def bench_gallery(counts: str) -> None:
    """The curation page in headless Chromium: first paint, first thumbnails, JS heap, DOM nodes, filter
    and keep latency at each count (needs playwright and Chromium)."""
    from genart.bench.common import print_table
    from genart.bench.gallery import HEADER, format_report
    from genart.bench.gallery import bench_gallery as run

    rows = run(int_list("--counts", counts, 1, MAX_GALLERY_ITEMS))
    title = "curation page (genart gallery) in headless Chromium, 1280x900 (medians of 3 loads)"
    print_table(title, format_report(rows), HEADER)
