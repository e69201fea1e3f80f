"""`genart up`, `genart status`, `genart down`: warm local replicas that later jobs on this machine reuse."""

from __future__ import annotations

import click

from genart.cli.app import _run, main


@main.command()
@click.option("--model", "models", multiple=True, metavar="URI", help="A bundle to keep warm. Repeatable.")
@click.option("--replicas", default=2, show_default=True, help="Warm replicas per bundle.")
@click.option("--gpus-per-replica", default=0.0, show_default=True, help="GPU share each replica holds.")
@_run
def up(models: tuple[str, ...], replicas: int, gpus_per_replica: float) -> None:
    """Start (or extend) a local Ray on 127.0.0.1 with token auth that keeps each --model loaded in warm
    replicas. Later `genart generate`, `synthesize` and `walk` on this machine join it and reuse them (a bundle
    not yet warm is loaded once and kept). State: $GENART_HOME/warm.json (default ~/.genart). GENART_WARM=0
    makes a run ignore it."""
    from genart.cluster.warm import up as run_up

    state, bundles = run_up(list(models), replicas=replicas, gpus=gpus_per_replica)
    click.echo(f"genart up: Ray at {state.gcs} (PID {state.pid}, since {state.started_at})")
    for b in bundles:
        how = "already warm" if b["reused"] == b["replicas"] else "loaded"
        click.echo(f"  {b['uri']}  model_id {b['model_id'][:12]}  {b['replicas']} replicas ({how})")


@main.command()
@_run
def status() -> None:
    """What `genart up` keeps warm: the Ray's address and PID, and per bundle its replicas, since when, and the
    jobs and shards they served. Exit 0 either way; prints `not running` when there is nothing."""
    from genart.cluster.warm import status as run_status

    info = run_status()
    if info is None:
        click.echo("genart up: not running")
        return
    s = info["state"]
    click.echo(f"genart up: Ray at {s.gcs} (PID {s.pid}, since {s.started_at})")
    by_bundle: dict = {}
    for r in info["replicas"]:
        for b in r["bundles"]:
            by_bundle.setdefault((b["uri"], b["model_id"]), []).append({**b, "pid": r["pid"]})
    if not by_bundle:
        click.echo("  no bundle warm yet")
    for (uri, model_id), rows in sorted(by_bundle.items()):
        click.echo(
            f"  {uri}  model_id {model_id[:12]}  replicas {len(rows)}  since {min(r['since'] for r in rows)}  "
            f"jobs {max(r['jobs'] for r in rows)}  shards {sum(r['shards'] for r in rows)}  "
            f"pids {','.join(str(r['pid']) for r in rows)}"
        )


@main.command()
@_run
def down() -> None:
    """Stop exactly what `genart up` started (the Ray process it recorded, checked by PID and start time)."""
    from genart.cluster.warm import down as run_down

    click.echo(run_down())
