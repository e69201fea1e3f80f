"""A CLI error shows at most a bounded part of a value the user typed (a 5000-digit number, a 5000-character
option or command), in one line, exit 2. No Ray: every case is refused before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from genart.cli import main

ROOT = Path(__file__).resolve().parents[1]
HUGE = "9" * 5000
NINES = "9" * 100


def _cut(prefix: str) -> str:
    """A word of a click usage error as shown: its first 99 characters (prefix, then nines) and an ellipsis."""
    return (prefix + NINES)[:99] + "…"


def _error(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, result.output[-500:]
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("seeds", [HUGE, f"1,{HUGE}", f"1 x{HUGE}"])
def test_walk_seeds(tmp_path, seeds):
    out = _error("walk", str(tmp_path / "b"), "--out", str(tmp_path / "w.gif"), "--seeds", seeds)
    shown = f"1,{HUGE}" if seeds.startswith("1,") else seeds
    assert out == f"error: --seeds: expected integers, got {shown[:199]}…\n"


def test_walk_seed_of_4000_digits_is_not_printed(tmp_path):
    out = _error("walk", str(tmp_path / "b"), "--out", str(tmp_path / "w.gif"), "--seeds", "9" * 4000)
    shown = "9" * 98 + "..." + "9" * 99  # reprlib's cut of a long integer
    assert out == f"error: --seeds: {shown} is outside 0..9223372036854775807\n"


@pytest.mark.parametrize(
    ("args", "last_line"),
    [
        (
            ["gallery", "OUT", "--limit", HUGE],
            "Error: Invalid value for '--limit': " + _cut("'") + " is not a valid integer range.",
        ),
        (
            ["gallery", "OUT", "--limit", "-" + HUGE],
            "Error: Invalid value for '--limit': " + _cut("'-") + " is not a valid integer range.",
        ),
        (
            ["walk", "B", "--out", "w.gif", "--seeds", "1", "--frames", HUGE],
            "Error: Invalid value for '--frames': " + _cut("'") + " is not a valid integer range.",
        ),
        (["gallery", "OUT", "--x" + HUGE], "Error: No such option " + _cut("'--x")),
        (["x" + HUGE], "Error: No such command " + _cut("'x")),
    ],
)
def test_click_usage_errors_are_cut(args, last_line):
    out = _error(*args)
    assert out.splitlines()[-1] == last_line and len(out) < 400


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            f"count={HUGE}",
            "error: --set count: Exceeds the limit (4300 digits) for integer string conversion",
        ),
        (
            f"x{HUGE}=1",
            "error: configs/generate/digits.yaml: invalid config\n  x" + "9" * 198 + "…: unknown key",
        ),
        (f"seed=x{HUGE}", "error: configs/generate/digits.yaml: invalid config\n  seed: Input should be"),
    ],
)
def test_generate_set_values_are_cut(monkeypatch, override, message):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["generate", "configs/generate/digits.yaml", "--set", override])
    assert result.exit_code == 2 and result.output.startswith(message) and len(result.output) < 600
