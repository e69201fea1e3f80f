"""Bounds of the `genart` commands' numeric options: each check raises ConfigError naming the option and
what it allows (the CLI prints it as one line, exit 2). Plain Python; the library functions that own a
bound (genart.cli.demo, genart.views.evaluate) use the same helpers."""

from __future__ import annotations

import math

from genart.config.loader import shorten, show
from genart.errors import ConfigError


def int_in(option: str, value: int, lo: int, hi: int) -> int:
    """`value` when lo <= value <= hi; else ConfigError naming `option` and the range."""
    if not lo <= value <= hi:
        raise ConfigError(f"{option} must be an integer in {lo}..{hi} (got {show(value)})")
    return value


def float_in(option: str, value: float, lo: float, hi: float) -> float:
    """`value` when it is finite and lo < value <= hi (lo excluded); else ConfigError."""
    if not (math.isfinite(value) and lo < value <= hi):
        raise ConfigError(f"{option} must be a number above {lo:g} and at most {hi:g} (got {show(value)})")
    return value


def int_list(option: str, text: str, lo: int, hi: int, most: int = 10) -> tuple[int, ...]:
    """A comma-separated list of 1..`most` integers, each in lo..hi; else ConfigError."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"{option} must be comma-separated integers, e.g. 1000,10000 (got {shorten(repr(text))})"
        ) from None
    if not 1 <= len(values) <= most:
        raise ConfigError(f"{option} takes 1..{most} values (got {len(values)})")
    for v in values:
        int_in(option, v, lo, hi)
    return values
