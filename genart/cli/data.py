"""`genart data preview`: see a train config's data as the model will see it."""

from __future__ import annotations

import click

from genart.cli.app import SET_HELP, _run, main


@main.group()
def data() -> None:
    """Look at training data before training on it."""


@data.command()
@click.argument("config", type=click.Path())
@click.option("--out", required=True, help="PNG to write (a path or URI).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option(
    "--per-class", default=8, show_default=True, type=click.IntRange(1, 32), help="Images drawn per class."
)
@click.option(
    "--limit",
    default=None,
    type=click.IntRange(1),
    help="Read only the first N listed images (class by class) of a big source; default: all of them.",
)
@_run
def preview(config: str, out: str, overrides: tuple[str, ...], per_class: int, limit: int | None) -> None:
    """Decode CONFIG's data.source as training does; draw images per class with their names and counts,
    and what was converted or skipped, by reason (also logged as one line)."""
    from genart.config import load_config
    from genart.views.data_preview import data_preview

    cfg = load_config(config, overrides, expect_kind="train")
    sheet = data_preview(cfg, out, per_class=per_class, limit=limit)
    click.echo(f"{sheet.target} ({sheet.size[0]}x{sheet.size[1]})")
