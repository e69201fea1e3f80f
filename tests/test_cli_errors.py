"""Hostile or mistaken arguments end in one clear error (exit 2 for config), never a traceback. No Ray:
every case here is refused before a cluster, a bundle or an output is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from genart.cli import main
from genart.config import load_config
from genart.config.common import MAX_SEED
from genart.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SEED_RANGE = "must be an integer in 0..9223372036854775807"


def _config(tmp_path, name: str, **changes) -> str:
    """A copy of a shipped config whose model and output point into tmp_path (nothing there exists)."""
    data = yaml.safe_load((ROOT / "configs" / name).read_text())
    data.update(model=str(tmp_path / "no-bundle"), output=str(tmp_path / "out"), **changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output and not isinstance(result.exception, (ValueError, OverflowError))
    return result


@pytest.mark.parametrize("command", ["generate", "synthesize"])
@pytest.mark.parametrize("seed", [str(2**64), str(MAX_SEED + 1), "-1"])
def test_seed_out_of_range_exits_2_before_writing(tmp_path, command, seed):
    cfg = _config(tmp_path, f"{command}/digits.yaml")
    result = _cli(command, cfg, "--set", f"seed={seed}")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and f"seed: {SEED_RANGE}" in result.output
    assert f"(got {seed})" in result.output
    assert not (tmp_path / "out").exists()  # no _job.json: refused before anything is written


def test_largest_seed_is_accepted_and_mixes(tmp_path):
    from genart.generation.plan import Plan

    cfg = load_config(_config(tmp_path, "generate/digits.yaml"), [f"seed={MAX_SEED}"])
    spec = Plan.from_config(cfg, 10).shard(0)
    assert spec.seeds.dtype.name == "int64" and (spec.seeds >= 0).all()


GENERATE_BAD = [
    ("count=0", "count"),
    ("count=100000000000", "count"),
    ("replicas=0", "replicas"),
    ("replicas=1000000", "replicas"),
    ("shard_size=0", "shard_size"),
    ("shard_size=1000000000", "shard_size"),
    ("batch_size=0", "batch_size"),
    ("batch_size=10000000", "batch_size"),
    ("truncation=.nan", "truncation"),
    ("truncation=.inf", "truncation"),
    ("truncation=-1", "truncation"),
    ("cpus_per_replica=0", "cpus_per_replica: must be in 0.0001..1024"),
    ("cpus_per_replica=0.00001", "cpus_per_replica: must be in 0.0001..1024"),
    ("cpus_per_replica=1e12", "cpus_per_replica: must be in 0.0001..1024"),
    ("cpus_per_replica=.nan", "cpus_per_replica"),
    ("gpus_per_replica=1.5", "gpus_per_replica: must be 0, a fraction"),
    ("gpus_per_replica=-1", "gpus_per_replica: must be 0, a fraction"),
    ("gpus_per_replica=1000", "gpus_per_replica: must be 0, a fraction"),
    ("gpus_per_replica=.inf", "gpus_per_replica"),
    ("max_in_flight=0", "max_in_flight"),
    ("max_in_flight=100000", "max_in_flight"),
    ("max_retries=-1", "max_retries"),
    ("max_retries=1000000", "max_retries"),
    ("shard_timeout_s=0", "shard_timeout_s"),
    ("shard_timeout_s=.inf", "shard_timeout_s"),
    ("shard_timeout_s=.nan", "shard_timeout_s"),
    ("image.quality=0", "image.quality"),
    ("classes.ids=[-1]", "classes.ids.0"),
    ("classes.ids=[4294967296]", "classes.ids.0"),
    ("filter.min_score=.nan", "filter.min_score"),
    ("dedupe.max_distance=65", "dedupe.max_distance"),
    ("inference.encode_workers=0", "inference.encode_workers"),
    ("inference.encode_workers=100000", "inference.encode_workers"),
]


@pytest.mark.parametrize("override,key", GENERATE_BAD)
def test_generate_config_bounds(tmp_path, override, key):
    """Through `genart plan` (it never starts Ray): exit 2 naming the key."""
    result = _cli("plan", _config(tmp_path, "generate/digits.yaml"), "--set", override)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and f"\n  {key}" in result.output


def test_weights_must_be_finite(tmp_path):
    cfg = _config(
        tmp_path, "generate/digits.yaml", classes={"mode": "weighted", "ids": [0, 1], "weights": [1, 0]}
    )
    for bad in ("[.nan, 1]", "[.inf, 1]"):
        with pytest.raises(ConfigError, match=r"classes\.weights\.0: Input should be a finite number"):
            load_config(cfg, [f"classes.weights={bad}"])


def test_too_many_shards_for_the_int32_shard_column(tmp_path):
    with pytest.raises(
        ConfigError, match=r"makes 10000000000 shards, more than the 2147483647 .*raise shard_size"
    ):
        load_config(_config(tmp_path, "generate/digits.yaml"), ["count=10000000000", "shard_size=1"])
    assert load_config(_config(tmp_path, "generate/digits.yaml"), ["count=10000000000", "shard_size=5"])


SYNTHESIZE_BAD = [
    ("per_class=0", "per_class: every count must be at least 1"),
    ("per_class=1000000000", "per_class: at most 100000000 items in all"),
    ("per_class={0: 60000000, 1: 60000000}", "per_class: at most 100000000 items in all"),
    ("per_class={-1: 5}", "per_class: class ids are integers in 0..9999"),
    ("splits={train: .nan, test: 0.5}", "splits.train: Input should be a finite number"),
    ("splits={train: .inf, test: -.inf}", "splits.train: Input should be a finite number"),
    ("replicas=0", "replicas"),
    ("batch_size=0", "batch_size"),
    ("shard_size=0", "shard_size"),
    ("candidate_shard_size=0", "candidate_shard_size"),
    ("candidate_shard_size=100000000", "candidate_shard_size"),
    ("cpus_per_replica=.nan", "cpus_per_replica"),
    ("gpus_per_replica=2.5", "gpus_per_replica: must be 0, a fraction"),
    ("filter.oversample=.nan", "filter.oversample"),
    ("filter.max_attempts=0", "filter.max_attempts"),
]


@pytest.mark.parametrize("override,key", SYNTHESIZE_BAD)
def test_synthesize_config_bounds(tmp_path, override, key):
    with pytest.raises(ConfigError, match=r"invalid config") as err:
        load_config(_config(tmp_path, "synthesize/digits.yaml"), [override])
    assert f"\n  {key}" in str(err.value)


def test_synthesize_total_over_the_models_classes(tmp_path):
    from genart.synthesis.runner import _check

    cfg = load_config(_config(tmp_path, "synthesize/digits.yaml"), ["per_class=20000000"])
    with pytest.raises(
        ConfigError, match=r"per_class: 200000000 items over this model's 10 classes; at most 100000000"
    ):
        _check(cfg, {"num_classes": 10})


@pytest.mark.parametrize(
    "args,message",
    [
        (["--count", "0"], "--count must be an integer in 1..1000000 (got 0)"),
        (["--count", "-5"], "--count must be an integer in 1..1000000 (got -5)"),
        (["--count", "10000000000"], "--count must be an integer in 1..1000000 (got 10000000000)"),
        (["--steps", "0"], "--steps must be an integer in 1..100000 (got 0)"),
        (["--steps", "99999999"], "--steps must be an integer in 1..100000 (got 99999999)"),
        (["--out", "s3://bucket/demo"], "--out s3://bucket/demo: the demo writes to a local folder"),
    ],
)
def test_demo_arguments(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = _cli("demo", *args)
    assert result.exit_code == 2 and result.output.startswith(f"error: {message}")
    assert result.output.count("\n") == 1 and not (tmp_path / "out").exists()


def test_demo_out_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    result = _cli("demo", "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "exists and is not a folder" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--samples", "0"], "error: --samples must be an integer in 10..50000 (got 0)\n"),
        (["--samples", "-3"], "error: --samples must be an integer in 10..50000 (got -3)\n"),
        (["--samples", "1"], "error: --samples must be an integer in 10..50000 (got 1)\n"),
        (["--samples", "100000000"], "error: --samples must be an integer in 10..50000 (got 100000000)\n"),
        (["--data", "cifar"], "error: --data cifar: no such train config or data source; pass digits, a `kind: "
                              "train` config, a folder with one subfolder per class, or a Parquet file/folder URI\n"),
    ],
)  # fmt: skip
def test_eval_arguments(tmp_path, args, message):
    result = _cli("eval", str(tmp_path / "no-bundle"), *args)
    assert (result.exit_code, result.output) == (2, message)


@pytest.mark.parametrize(
    "args,message",
    [
        (["bench", "train", "--steps", "0"], "--steps must be an integer in 1..100000 (got 0)"),
        (["bench", "generate", "--count", "0"], "--count must be an integer in 1..10000000 (got 0)"),
        (["bench", "generate", "--count", "-1"], "--count must be an integer in 1..10000000 (got -1)"),
        (["bench", "train-data", "--steps", "-2"], "--steps must be an integer in 1..100000 (got -2)"),
        (["bench", "memory", "--counts", "abc"], "--counts must be comma-separated integers, e.g. 1000,10000 (got 'abc')"),
        (["bench", "memory", "--counts", "0,10"], "--counts must be an integer in 1..10000000 (got 0)"),
        (["bench", "memory", "--shards", "0"], "--shards must be an integer in 1..10000000 (got 0)"),
        (["bench", "dedupe", "--sizes", "1,,2"], "--sizes must be comma-separated integers, e.g. 1000,10000 (got '1,,2')"),
        (["bench", "dedupe", "--sizes", "1000000000000"], "--sizes must be an integer in 1..100000000 (got 1000000000000)"),
        (["bench", "dedupe", "--max-distance", "65"], "--max-distance must be an integer in 0..64 (got 65)"),
    ],
)  # fmt: skip
def test_bench_arguments(args, message):
    result = _cli(*args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--image-size", "0"], "--image-size must be an integer in 1..8192 (got 0)"),
        (["--image-size", "1000000"], "--image-size must be an integer in 1..8192 (got 1000000)"),
        (["--channels", "2"], "--channels must be 1, 3 or 4 (grey, RGB, RGBA; got 2)"),
        (["--images-per-s", "0"], "--images-per-s must be a number above 0 and at most 1e+09 (got 0.0)"),
        (["--images-per-s", "-4"], "--images-per-s must be a number above 0 and at most 1e+09 (got -4.0)"),
        (["--images-per-s", "nan"], "--images-per-s must be a number above 0 and at most 1e+09 (got nan)"),
        (["--images-per-s", "inf"], "--images-per-s must be a number above 0 and at most 1e+09 (got inf)"),
    ],
)
def test_plan_arguments(tmp_path, args, message):
    result = _cli("plan", _config(tmp_path, "generate/digits.yaml"), *args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


def test_plan_still_runs_with_good_arguments(tmp_path):
    result = _cli("plan", _config(tmp_path, "generate/digits.yaml"), "--images-per-s", "500", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["images_per_s_per_replica"] == 500.0


@pytest.mark.parametrize("value", ["9" * 5000, "0x" + "f" * 5000, "-" + "9" * 5000])
def test_huge_integers_in_yaml_are_one_line_exit_2(tmp_path, value):
    cfg = _config(tmp_path, "generate/digits.yaml")
    text = Path(cfg).read_text().replace("seed: ", f"seed: {value} #", 1)
    Path(cfg).write_text(text)
    result = _cli("generate", cfg)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert any(f"{cfg}:" in ln for ln in lines) and len(result.output) < 2000, result.output
    result = _cli("generate", _config(tmp_path, "generate/digits.yaml"), "--set", f"seed={value}")
    assert result.exit_code == 2, result.output
    assert "seed" in result.output and len(result.output) < 2000, result.output
