"""`genart preview`, `genart walk`, `genart gallery`: views of collections and datasets."""

from __future__ import annotations

import click

from genart.cli.app import _run, main
from genart.views.limits import FRAME_MS, MAX_GALLERY_ITEMS, MAX_SHEET_ITEMS, MAX_WALK_FRAMES, MAX_WALK_SCALE

# class names come from a bundle only when the user names one: a URI inside an output is never fetched
MODEL_OPTION = click.option(
    "--model",
    default=None,
    metavar="BUNDLE",
    help="Bundle to take class names from (default: class ids; the output's own model URI is not read).",
)


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
@click.option(
    "--class",
    "class_id",
    default=None,
    metavar="NAME|ID",
    help="Only items of this class: its name (the dataset's, or --model's) or its id.",
)
@click.option(
    "--trait",
    "traits",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only items with this trait (e.g. brightness=dark, 'dominant colour=white'). Repeatable.",
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, MAX_SHEET_ITEMS),
    help="Most items on the sheet (10 per row).",
)
@MODEL_OPTION
@_run
def preview(
    uri: str, out: str | None, class_id: str | None, traits: tuple[str, ...], limit: int, model: str | None
) -> None:
    """A contact sheet PNG of a generation output or a synthesized dataset at URI."""
    from genart.views.preview import contact_sheet

    target, n = contact_sheet(uri, out, class_id=class_id, traits=_traits(traits), limit=limit, model=model)
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
@click.option(
    "--frames",
    default=24,
    show_default=True,
    type=click.IntRange(1, MAX_WALK_FRAMES),
    help="Frames from one seed to the next.",
)
@click.option(
    "--class",
    "class_id",
    default=None,
    metavar="NAME|ID",
    help="Class name or id (required for conditional models).",
)
@click.option("--loop/--no-loop", default=True, show_default=True, help="Walk back to the first seed.")
@click.option(
    "--scale",
    default=4,
    show_default=True,
    type=click.IntRange(1, MAX_WALK_SCALE),
    help="Upscale each frame by this factor.",
)
@click.option(
    "--frame-ms",
    default=80,
    show_default=True,
    type=click.IntRange(*FRAME_MS),
    help="Milliseconds per frame.",
)
@_run
def walk(
    bundle: str,
    more_seeds: tuple[int, ...],
    seeds: tuple[str, ...],
    out: str,
    frames: int,
    class_id: str | None,
    loop: bool,
    scale: int,
    frame_ms: int,
) -> None:
    """A latent-space walk (spherical interpolation between the seeds' latents) as an animated GIF,
    usable as a token's animation_url."""
    from genart.config.loader import shorten
    from genart.errors import ConfigError
    from genart.views.walk import WalkSpec
    from genart.views.walk import walk as run_walk

    try:
        all_seeds = [int(x) for s in seeds for x in s.replace(",", " ").split()] + list(more_seeds)
    except ValueError:
        raise ConfigError(f"--seeds: expected integers, got {shorten(' '.join(seeds))}") from None
    spec = WalkSpec(
        tuple(all_seeds), frames=frames, class_id=class_id, loop=loop, scale=scale, frame_ms=frame_ms
    )
    target, n = run_walk(bundle, out, spec)
    click.echo(f"{target} ({n} frames)")


@main.command()
@click.argument("uri")
@click.option(
    "--limit",
    default=MAX_GALLERY_ITEMS,
    show_default=True,
    type=click.IntRange(1, MAX_GALLERY_ITEMS),
    help="Most items on the page (in id order; shown 200 at a time).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Also serve the page on 127.0.0.1 (a random port and token) and write the picks to "
    "URI/curation/picks.json as you curate; Ctrl-C stops it.",
)
@MODEL_OPTION
@_run
def gallery(uri: str, limit: int, serve: bool, model: str | None) -> None:
    """The curation page (URI/index.html, static, works offline): keep / reject each piece with the mouse
    or the keyboard (arrows move, k keep, x reject, u undecide), filter by status and trait, and
    "Export picks" to picks.json for `genart collect`. Choices persist in the browser."""
    from genart.views.gallery import build

    page = build(uri, limit=limit, model=model)
    click.echo(f"{page.target} ({page.items} items)")
    if serve:
        from genart.views.serve import CurationServer
        from genart.views.serve import serve as run_server

        server = CurationServer(page.source.out, page.output, page.job_id)
        run_server(server, ready=lambda url: click.echo(f"curate at {url} (Ctrl-C to stop)"))
        click.echo("stopped")
