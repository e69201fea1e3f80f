import subprocess
import sys
from pathlib import Path

import pytest

from genart.config import GenerateConfig, TrainConfig, load_config
from genart.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ALL_CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def test_configs_exist():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in ALL_CONFIGS}
    assert {"train/cgan-digits.yaml", "train/vae-digits.yaml", "generate/digits.yaml"} <= names


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_names_its_command(path):
    cfg = load_config(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# genart {cfg.kind} configs/"), first


def test_train_set_keys_from_design_are_typed():
    cfg = load_config(
        ROOT / "configs/train/cgan-digits.yaml",
        [
            "output=/tmp/x",
            "train.steps=7",
            "scaling.num_workers=2",
            "scaling.use_gpu=true",
            "data.source=s3://bucket/images/",
        ],
    )
    assert isinstance(cfg, TrainConfig)
    assert (cfg.output, cfg.train.steps, cfg.scaling.num_workers, cfg.scaling.use_gpu) == (
        "/tmp/x",
        7,
        2,
        True,
    )
    assert cfg.data.source == "s3://bucket/images/"


def test_generate_set_keys_from_design_are_typed():
    cfg = load_config(
        ROOT / "configs/generate/digits.yaml",
        [
            "model=/m",
            "output=s3://b/o",
            "count=10",
            "seed=3",
            "replicas=1",
            "shard_size=5",
            "batch_size=4",
            "image.format=webp",
            "layout=files",
            "market.standard=opensea",
            "market.base_uri=ipfs://cid/",
            "market.name=Digits",
            "address=null",
        ],
    )
    assert isinstance(cfg, GenerateConfig)
    assert (cfg.count, cfg.seed, cfg.image.format, cfg.market.base_uri, cfg.address) == (
        10,
        3,
        "webp",
        "ipfs://cid/",
        None,
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("scaling.num_workers=0", "scaling.num_workers: Input should be greater than or equal to 1"),
        ("train.steps=many", "train.steps: Input should be a valid integer"),
        ("train.stpes=10", "train.stpes: unknown key"),
        ("model.arch=gpt", "model: Input tag 'gpt' found using 'arch' does not match"),
        ("model.image_size=48", "model.image_size: Input should be 32, 64, 128 or 256"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "configs/train/cgan-digits.yaml", [override])
    assert fragment in str(err.value)


def test_wrong_kind_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="kind is 'generate', but this command runs `kind: train`"):
        load_config(ROOT / "configs/generate/digits.yaml", expect_kind="train")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: paint\n")
    with pytest.raises(
        ConfigError, match="kind: 'paint' is not one of generate, schedule, synthesize, train"
    ):
        load_config(bad)


def test_cli_config_error_exits_2_with_one_message_and_no_traceback():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "genart.cli",
            "train",
            str(ROOT / "configs/train/cgan-digits.yaml"),
            "--set",
            "scaling.num_workers=zero",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "scaling.num_workers: Input should be a valid integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_has_help():
    from click.testing import CliRunner

    from genart.cli import main

    runner = CliRunner()
    for args in (
        ["--help"],
        ["train", "--help"],
        ["generate", "--help"],
        ["verify", "--help"],
        ["eval", "--help"],
        ["demo", "--help"],
        ["bench", "--help"],
        ["bench", "train", "--help"],
        ["bench", "generate", "--help"],
    ):
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (args, res.output)
        assert "Usage:" in res.output


def test_generate_filter_keys_are_typed_and_checked():
    cfg = load_config(
        ROOT / "configs/generate/collection.yaml",
        [
            "filter.min_score=0.7",
            "filter.scorer=discriminator",
            "dedupe.max_distance=4",
            "filter.max_attempts=9",
        ],
    )
    assert (cfg.filter.min_score, cfg.filter.scorer, cfg.dedupe.max_distance, cfg.filter.max_attempts) == (
        0.7,
        "discriminator",
        4,
        9,
    )
    for bad, key in (
        ("filter.scorer=oracle", "filter.scorer"),
        ("dedupe.max_distance=65", "dedupe.max_distance"),
        ("filter.max_attempts=0", "filter.max_attempts"),
        ("filter.min_score=-1", "filter.min_score"),
        ("filter.min_score=1.5", "filter.min_score"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(ROOT / "configs/generate/collection.yaml", [bad])
