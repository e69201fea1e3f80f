"""The `genart` command: parse, load the config, call one library function, map errors to exit codes.

Training, generation, synthesis, verify, plan, eval and demo live here; benchmarks in `cli/bench.py`, cluster
commands in `cli/cluster.py`, collection views in `cli/views.py` (each registers on `main`)."""

from __future__ import annotations

import json
import sys

import click

from genart.cli.app import SET_HELP, _run, main
from genart.config.bounds import float_in, int_in
from genart.errors import ConfigError

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
    click.echo(json.dumps(summary.as_dict()))


@main.command()
@click.argument("uri")
@_run
def verify(uri: str) -> None:
    """Exit 0 only when the output at URI is complete and every file matches its sha256."""
    from genart.generation.verify import verify as run_verify

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
@click.option(
    "--data",
    default="digits",
    show_default=True,
    metavar="CONFIG|SOURCE",
    help="Real data to compare against: digits, a `kind: train` config, or a source (class folders, Parquet).",
)
@click.option("--samples", default=1000, show_default=True, help="Generated images to score.")
@click.option(
    "--out",
    default=None,
    help="Folder for eval.json, class_grids.png and loss_curves.png (default: beside the bundle).",
)
@click.option(
    "--inception-weights",
    default=None,
    metavar="PATH",
    help="Local FID Inception weights: adds the standard FID (needs torchmetrics[image]).",
)
@_run
def eval_(bundle: str, data: str, samples: int, out: str | None, inception_weights: str | None) -> None:
    """Quality report. Digits: classifier accuracy per class, Frechet distance, diversity, loss curves. Any
    other labelled data: a CNN judge trained on it gives real-test, GAN-test and GAN-train accuracy, Frechet
    distance and precision/recall in its features, diversity, per-class accuracy and sample grids by name."""
    from genart.views.evaluate import evaluate, format_report

    report = evaluate(bundle, data=data, samples=samples, out=out, inception_weights=inception_weights)
    click.echo(format_report(report))


@main.command()
@click.option("--out", default="out/demo", show_default=True, help="Folder for everything the demo writes.")
@click.option("--steps", default=1200, show_default=True, help="Training steps.")
@click.option("--count", default=1000, show_default=True, help="Images to generate.")
@_run
def demo(out: str, steps: int, count: int) -> None:
    """Train a small class-conditional digits GAN on a local Ray, generate a collection, write a contact sheet."""
    from genart.cli.demo import run_demo

    run_demo(out, steps=steps, count=count)


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
    from genart.generation.estimate import format_table, plan_costs
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
    click.echo(json.dumps(summary.as_dict()))


if __name__ == "__main__":
    main()  # `main` lives in cli/app.py: the commands of every module are registered on it
