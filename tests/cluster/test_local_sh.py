"""cluster/local.sh treats its arguments and its paths as data: counts are validated before any arithmetic,
and `eval "$(cluster/local.sh env)"` is safe for any checkout path. Ray itself is never started here: the
script runs from a copy whose `ray` is a stand-in that exits at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _copy(where: Path) -> Path:
    """cluster/local.sh copied to WHERE/cluster/local.sh, with a `ray` that fails at once."""
    (where / "cluster").mkdir(parents=True)
    script = where / "cluster" / "local.sh"
    shutil.copy2(ROOT / "cluster" / "local.sh", script)
    fake = where / "fake-ray"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    return script


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "RAY": str(script.parents[1] / "fake-ray"), "PY": sys.executable,
           "HOME": str(cwd)}  # fmt: skip
    return subprocess.run(
        ["bash", str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "option,value",
    [
        ("--workers", "cpus[$(id>f)]"),
        ("--workers", "a[$(touch f)]"),
        ("--workers", "$(touch f)"),
        ("--workers", "1+1"),
        ("--workers", "-1"),
        ("--workers", "65"),
        ("--workers", ""),
        ("--cpus", "x[$(id>f)]"),
        ("--cpus", "0"),
        ("--cpus", "2 "),
    ],
)
def test_counts_are_plain_integers_before_any_arithmetic(tmp_path, option, value):
    script = _copy(tmp_path / "repo")
    p = _run(script, "start", option, value, cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    low, high = ("0", "64") if option == "--workers" else ("1", "1024")
    quoted = subprocess.run(
        ["bash", "-c", 'printf %q "$1"', "_", value], capture_output=True, text=True
    ).stdout
    assert p.stderr == f"{option} must be a whole number from {low} to {high}, got {quoted}\n"
    assert not (tmp_path / "f").exists()  # the injected command did not run
    assert not (script.parent / ".local").exists()  # refused before any state was written


def test_a_missing_value_is_refused(tmp_path):
    script = _copy(tmp_path / "repo")
    p = _run(script, "start", "--workers", cwd=tmp_path)
    assert (p.returncode, p.stderr) == (2, "--workers needs a value\n")


def test_leading_zeros_are_decimal(tmp_path):
    """08 is eight workers (bash would read it as a bad octal number); here the fake ray stops the start."""
    script = _copy(tmp_path / "repo")
    p = _run(script, "start", "--workers", "08", "--cpus", "010", cwd=tmp_path)
    assert "must be a whole number" not in p.stderr and p.returncode == 1, p.stderr
    assert "Ray head exited" in p.stderr
    state = script.parent / ".local"
    assert not (state / "temp_dir").exists() and not (state / "head.pid").exists()  # cleaned up after itself
    assert (state / "head.log").is_file()


@pytest.mark.parametrize("name", ["my checkout", 'it\'s $(touch pwned) `touch pwned2` "q" ; x'])
def test_env_output_is_safe_to_eval_for_any_path(tmp_path, name):
    script = _copy(tmp_path / name)
    state = script.parent / ".local"
    state.mkdir()
    (state / "address").write_text("http://127.0.0.1:8265\n")
    shell = (
        'eval "$(bash "$1" env)" && printf "%s\\n" "$RAY_AUTH_MODE" "$RAY_AUTH_TOKEN_PATH" '
        '"$GENART_RAY_ADDRESS" "$RAY_API_SERVER_ADDRESS"'
    )
    p = subprocess.run(
        ["bash", "-c", shell, "_", str(script)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "token",
        str(state / "auth_token"),
        "http://127.0.0.1:8265",
        "http://127.0.0.1:8265",
    ]
    assert not list(tmp_path.glob("pwned*"))
