"""What every benchmark shares: where the repository's configs are, the bundle they run, how a whole process is
timed and how a table is printed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from genart.errors import JobFailed

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = ROOT / "configs" / "train" / "cgan-digits.yaml"
GENART = str(Path(sys.executable).with_name("genart"))


def bench_bundle(tmp: str) -> str:
    """The shipped cGAN's bundle when `make bench` trained it; else the same architecture, untrained."""
    trained = ROOT / "out" / "cgan-digits" / "model"
    if (trained / "model.json").exists():
        return str(trained)
    from genart.bundle import save_untrained_bundle
    from genart.config import load_config
    from genart.models.registry import generator_spec

    save_untrained_bundle(f"{tmp}/bundle", generator_spec(load_config(TRAIN_CONFIG).model))
    return f"{tmp}/bundle"


def timed(cmd: list[str], env: dict, cwd: str) -> tuple[float, str]:
    """(wall seconds, stdout) of one process; raises JobFailed with its stderr when it fails."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise JobFailed(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return seconds, p.stdout


def print_table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n{title}")  # noqa: T201 - benchmark tables are the command's output
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)))  # noqa: T201
