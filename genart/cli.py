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
@_run
def bench_train(steps: int) -> None:
    """Samples/s: plain PyTorch loop vs Ray Train with 1 and 2 workers; quality of the shipped cGAN config."""
    from genart.benchmarks import bench_train as run

    run(steps=steps)


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


if __name__ == "__main__":
    main()
