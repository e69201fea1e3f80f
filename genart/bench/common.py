"""What every benchmark shares: where the repository's configs are, and how a table is printed."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = ROOT / "configs" / "train" / "cgan-digits.yaml"


def print_table(title: str, rows: list[tuple], header: tuple) -> None:
    print(f"\n{title}")  # noqa: T201 - benchmark tables are the command's output
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)))  # noqa: T201
