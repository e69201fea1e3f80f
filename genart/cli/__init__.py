"""The `genart` command. `app.py` holds the click group and the error handling every command shares; each
other module registers one command group on it and imports only `app.py` (never this package or another
command module), so the CLI has no import cycle."""

from genart.cli import bench, cluster, data, market, run, views, warm  # noqa: F401 - importing a module registers its commands
from genart.cli.app import main

__all__ = ["main"]
