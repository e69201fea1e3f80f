"""The `genart` command: parse, load the config, call one library function, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import logging
import sys

import click

from genart.errors import GenartError

SET_HELP = "Override a config key: dotted path = YAML value (e.g. train.steps=100, address=null). Repeatable."


def _run(fn):
    """Turn GenartError into one clear message and its exit status (2 for config errors); no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GenartError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genart")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """genart: train GAN/VAE image generators with Ray Train and generate images at scale with Ray actors."""
    # genart's own logger, independent of the root logger that ray.init reconfigures
    logger = logging.getLogger("genart")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1).")
@_run
def train(config: str, overrides: tuple[str, ...], address: str | None) -> None:
    """Train the model a `kind: train` CONFIG describes; export the bundle to OUTPUT/model.

    Running the same command again on the same output continues from the latest checkpoint.
    """
    from genart.config import load_config
    from genart.training.trainer import train as run_train

    cfg = load_config(config, overrides, expect_kind="train")
    if address:
        cfg.address = address
    result = run_train(cfg)
    last = result.metrics[-1] if result.metrics else {}
    click.echo(f"trained {result.steps} steps on {result.world_size} worker(s) in {result.seconds:.0f}s "
               f"({last.get('samples_per_s', 0):.0f} samples/s); bundle: {result.bundle_uri}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1).")
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
@click.option("--out", default=None, help="Folder for eval.json and loss_curves.png (default: beside the bundle).")
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
@click.option("--quality/--no-quality", default=True, show_default=True,
              help="Also train the shipped cGAN config to out/cgan-digits and score it (~8 min).")
@_run
def bench_train(steps: int, quality: bool) -> None:
    """Samples/s: plain PyTorch loop vs Ray Train with 1 and 2 workers; quality of the shipped cGAN config."""
    from genart.benchmarks import bench_train as run

    run(steps=steps, quality=quality)


@bench.command(name="generate")
@click.option("--count", default=30000, show_default=True)
@_run
def bench_generate(count: int) -> None:
    """Images/s: plain PIL loop, Ray Data pipeline, genart with 1 and 2 replicas, and the machine's limit."""
    from genart.benchmarks import bench_generate as run

    run(count=count)


ADDRESS_HELP = ("Ray dashboard URL of the cluster, e.g. http://127.0.0.1:8265 (the token comes from "
                "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).")


def _echo_chunk(text: str) -> None:
    click.echo(text, nl=False)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--address", required=True, help=ADDRESS_HELP)
@click.option("--wait", is_flag=True, help="Follow the job's logs; exit 0 only when it succeeded.")
@click.option("--submission-id", default=None, help="Id for the job; a job with this id is never run twice.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_run
def submit(config: str, address: str, wait: bool, submission_id: str | None,
           overrides: tuple[str, ...]) -> None:
    """Submit CONFIG (its `kind` picks jobs/<kind>.py) to a Ray cluster through the Jobs API."""
    from genart import submit as sub

    spec = sub.build_job(config, overrides)
    client = sub.connect(address)
    job_id, existed = sub.submit(client, address, spec, submission_id)
    if existed:
        state = sub.status(client, address, job_id)
        click.echo(f"{job_id} already exists ({state}); not submitted again", err=True)
    click.echo(job_id)
    if wait:
        final = sub.follow(client, address, job_id, _echo_chunk)
        sub.require_success(client, address, job_id, final)
        click.echo(f"{job_id} {final}", err=True)


@main.group()
def jobs() -> None:
    """List, inspect, follow and stop jobs on a Ray cluster."""


@jobs.command(name="list")
@click.option("--address", required=True, help=ADDRESS_HELP)
@_run
def jobs_list(address: str) -> None:
    """One line per job: submission id, status, entrypoint."""
    from genart import submit as sub

    client = sub.connect(address)
    for job in sorted(sub.list_jobs(client, address), key=lambda j: j.start_time or 0):
        click.echo(f"{job.submission_id or job.job_id}\t{job.status.value}\t{job.entrypoint}")


@jobs.command(name="status")
@click.argument("job_id")
@click.option("--address", required=True, help=ADDRESS_HELP)
@_run
def jobs_status(job_id: str, address: str) -> None:
    """Print the job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and message."""
    from genart import submit as sub

    client = sub.connect(address)
    job = sub.info(client, address, job_id)
    click.echo(f"{job_id}\t{job.status.value}\t{job.message or ''}")


@jobs.command(name="logs")
@click.argument("job_id")
@click.option("--address", required=True, help=ADDRESS_HELP)
@click.option("--follow", is_flag=True, help="Keep streaming until the job ends.")
@_run
def jobs_logs(job_id: str, address: str, follow: bool) -> None:
    """Print the job's driver output."""
    from genart import submit as sub

    client = sub.connect(address)
    if follow:
        sub.follow(client, address, job_id, _echo_chunk)
    else:
        click.echo(sub.logs(client, address, job_id), nl=False)


@jobs.command(name="stop")
@click.argument("job_id")
@click.option("--address", required=True, help=ADDRESS_HELP)
@_run
def jobs_stop(job_id: str, address: str) -> None:
    """Ask the cluster to stop the job."""
    from genart import submit as sub

    client = sub.connect(address)
    stopped = sub.stop(client, address, job_id)
    click.echo(f"{job_id} {'stopping' if stopped else 'was not running'}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--once", is_flag=True, help="Run the latest due slot if it has not run, then exit.")
@click.option("--dry-run", is_flag=True, help="Print the next slots (ISO 8601) and exit.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_run
def schedule(config: str, once: bool, dry_run: bool, overrides: tuple[str, ...]) -> None:
    """Run a `kind: schedule` CONFIG: its job on every cron slot, each slot at most once.

    Without --once or --dry-run it runs until SIGTERM or SIGINT, then exits leaving the history consistent.
    """
    from pathlib import Path

    from genart.config import load_config
    from genart.schedule import Scheduler
    from genart.schedule_state import iso, next_slots, now_utc, run_id

    cfg = load_config(config, overrides, expect_kind="schedule")
    name = cfg.name or Path(config).stem
    if dry_run:
        for slot in next_slots(cfg.cron, cfg.timezone, now_utc(), 5):
            click.echo(f"{iso(slot)}\t{run_id(name, slot)}")
        return
    sched = Scheduler(cfg, name)
    if once:
        rec = sched.run_once()
        click.echo(f"{rec.run_id}\t{rec.slot}\t{rec.status}\tattempts={len(rec.attempts)}")
        if rec.status != "succeeded":
            sys.exit(1)
    else:
        sched.run_forever()


def _traits(pairs: tuple[str, ...]) -> dict[str, str]:
    from genart.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--trait {pair!r}: expected KEY=VALUE, e.g. --trait brightness=dark")
        out[key.strip()] = value.strip()
    return out


@main.command()
@click.argument("uri")
@click.option("--out", default=None, help="PNG to write (a path or URI; default: URI/preview.png).")
@click.option("--class", "class_id", type=int, default=None, help="Only items of this class id.")
@click.option(
    "--trait",
    "traits",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only items with this trait (e.g. brightness=dark, 'dominant colour=white'). Repeatable.",
)
@click.option("--limit", default=100, show_default=True, help="Most items on the sheet (10 per row).")
@_run
def preview(uri: str, out: str | None, class_id: int | None, traits: tuple[str, ...], limit: int) -> None:
    """A contact sheet PNG of a generation output or a synthesized dataset at URI."""
    from genart.preview import contact_sheet

    target, n = contact_sheet(uri, out, class_id=class_id, traits=_traits(traits), limit=limit)
    click.echo(f"{target} ({n} items)")


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("bundle")
@click.argument("more_seeds", nargs=-1, type=int, metavar="")
@click.option(
    "--seeds",
    "seeds",
    multiple=True,
    required=True,
    help="Seeds to walk between, in order: --seeds 1 2 3 (or 1,2,3).",
)
@click.option("--out", required=True, help="GIF to write (a path or URI).")
@click.option("--frames", default=24, show_default=True, help="Frames from one seed to the next.")
@click.option(
    "--class", "class_id", type=int, default=None, help="Class id (required for conditional models)."
)
@click.option("--loop/--no-loop", default=True, show_default=True, help="Walk back to the first seed.")
@click.option("--scale", default=4, show_default=True, help="Upscale each frame by this factor.")
@click.option("--frame-ms", default=80, show_default=True, help="Milliseconds per frame.")
@_run
def walk(
    bundle: str,
    more_seeds: tuple[int, ...],
    seeds: tuple[str, ...],
    out: str,
    frames: int,
    class_id: int | None,
    loop: bool,
    scale: int,
    frame_ms: int,
) -> None:
    """A latent-space walk (spherical interpolation between the seeds' latents) as an animated GIF,
    usable as a token's animation_url."""
    from genart.errors import ConfigError
    from genart.preview import WalkSpec
    from genart.preview import walk as run_walk

    try:
        all_seeds = [int(x) for s in seeds for x in s.replace(",", " ").split()] + list(more_seeds)
    except ValueError:
        raise ConfigError(f"--seeds: expected integers, got {' '.join(seeds)}") from None
    spec = WalkSpec(
        tuple(all_seeds), frames=frames, class_id=class_id, loop=loop, scale=scale, frame_ms=frame_ms
    )
    target, n = run_walk(bundle, out, spec)
    click.echo(f"{target} ({n} frames)")


@main.command()
@click.argument("uri")
@click.option("--limit", default=1000, show_default=True, help="Most items on the page (in id order).")
@_run
def gallery(uri: str, limit: int) -> None:
    """A static HTML gallery (URI/index.html): thumbnails, each item's traits, a filter by trait."""
    from genart.gallery import gallery as run_gallery

    target, n = run_gallery(uri, limit=limit)
    click.echo(f"{target} ({n} items)")



@main.command(name="plan")
@click.argument("config", type=click.Path(dir_okay=False))
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

    result = run(tuple(int(c) for c in counts.split(",")), shards)
    click.echo(format_report(result))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--address", default=None, help="Ray cluster to join (default: start a local Ray on 127.0.0.1).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset (and candidates) written by a different config.")
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
    main()
