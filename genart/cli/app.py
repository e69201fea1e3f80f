"""The `genart` command group every command module registers on, and what they share: `_run` (GenartError ->
one line and its exit status), usage errors that show bounded values, the --set help. Imports no command
module, so `cli/run.py`, `cli/bench.py`, `cli/cluster.py` and `cli/views.py` depend on it and never on each
other."""

from __future__ import annotations

import functools
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


class _Group(click.Group):
    """click's group whose usage errors (a bad option value, an unknown option or command) show at most
    MAX_SHOWN characters of what the user typed: `--limit <5000 digits>` gives one short line, exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.message = _shorten_words(exc.message)
            raise


def _shorten_words(message: str) -> str:
    """`message` with each long word (a value the user typed) cut, and the whole cut, to MAX_SHOWN."""
    from genart.config.loader import MAX_SHOWN, shorten

    words = [shorten(w, MAX_SHOWN // 2) for w in message.split(" ")]
    return shorten(" ".join(words), 2 * MAX_SHOWN)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
