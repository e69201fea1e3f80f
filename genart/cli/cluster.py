"""`genart submit`, `genart jobs ...`, `genart schedule`: commands that talk to a Ray cluster."""

from __future__ import annotations

import sys
import time

import click

from genart.cli.app import SET_HELP, _run, main

ADDRESS_HELP = (
    "Ray dashboard URL of the cluster, e.g. http://127.0.0.1:8265 (the token comes from "
    "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."
)


def _echo_chunk(text: str) -> None:
    click.echo(text, nl=False)


@main.command()
@click.argument("config", type=click.Path())
@click.option("--address", required=True, help=ADDRESS_HELP)
@click.option("--wait", is_flag=True, help="Follow the job's logs; exit 0 only when it succeeded.")
@click.option("--submission-id", default=None, help="Id for the job; a job with this id is never run twice.")
@click.option(
    "--wait-for-cluster",
    "cluster_wait_s",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a cluster that is still starting (dashboard not answering, job agent not up).",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_run
def submit(
    config: str,
    address: str,
    wait: bool,
    submission_id: str | None,
    cluster_wait_s: float,
    overrides: tuple[str, ...],
) -> None:
    """Submit CONFIG (its `kind` picks jobs/<kind>.py) to a Ray cluster through the Jobs API.

    Credentials are refused in CONFIG and --set (storage.options key/secret/token/password...): the cluster's
    nodes take theirs from their own environment or secret store.
    """
    from genart.cluster import submit as sub

    spec = sub.build_job(config, overrides)
    t0 = time.monotonic()  # one bounded wait for the dashboard and then the job agent
    client = sub.connect(address, wait_s=cluster_wait_s)
    left = cluster_wait_s - (time.monotonic() - t0)
    job_id, existed = sub.submit(client, address, spec, submission_id, wait_s=max(left, 0.0))
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
    from genart.cluster import submit as sub

    client = sub.connect(address)
    for job in sorted(sub.list_jobs(client, address), key=lambda j: j.start_time or 0):
        shown = sub.shown_entrypoint(job.entrypoint or "")
        click.echo(f"{job.submission_id or job.job_id}\t{job.status.value}\t{shown}")


@jobs.command(name="status")
@click.argument("job_id")
@click.option("--address", required=True, help=ADDRESS_HELP)
@_run
def jobs_status(job_id: str, address: str) -> None:
    """Print the job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and message."""
    from genart.cluster import submit as sub

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
    from genart.cluster import submit as sub

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
    from genart.cluster import submit as sub

    client = sub.connect(address)
    stopped = sub.stop(client, address, job_id)
    click.echo(f"{job_id} {'stopping' if stopped else 'was not running'}")


@main.command()
@click.argument("config", type=click.Path())
@click.option("--once", is_flag=True, help="Run the latest due slot if it has not run, then exit.")
@click.option("--dry-run", is_flag=True, help="Print the next slots (ISO 8601) and exit.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@_run
def schedule(config: str, once: bool, dry_run: bool, overrides: tuple[str, ...]) -> None:
    """Run a `kind: schedule` CONFIG: its job on every cron slot, each slot at most once.

    Without --once or --dry-run it runs until SIGTERM or SIGINT, then exits leaving the history consistent.
    """
    from pathlib import Path

    from genart.cluster.history import iso, next_slots, now_utc, run_id
    from genart.cluster.schedule import SlotScheduler, check_job
    from genart.config import load_config

    cfg = load_config(config, overrides, expect_kind="schedule")
    name = cfg.name or Path(config).stem
    if dry_run:
        check_job(cfg, config)
        for slot in next_slots(cfg.cron, cfg.timezone, now_utc(), 5):
            click.echo(f"{iso(slot)}\t{run_id(name, slot)}")
        return
    sched = SlotScheduler(cfg, name, source=config)
    if once:
        rec = sched.run_once()
        click.echo(f"{rec.run_id}\t{rec.slot}\t{rec.status}\tattempts={len(rec.attempts)}")
        if rec.status != "succeeded":
            sys.exit(1)
    else:
        sched.run_forever()
