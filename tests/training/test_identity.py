"""`genart train` continues only the same job (genart.training.identity): unit tests without Ray."""

import json
import logging

import fsspec
import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.errors import ConfigError, StorageError
from genart.storage.output import Output
from genart.training import identity
from tests.training.test_trainer import _cfg

CONFIG = "configs/train/cgan-digits.yaml"


def _out(cfg):
    return Output.open(cfg.output, cfg.storage.options)


def _start(cfg, overwrite):
    identity.start(cfg, _out(cfg), overwrite)


def _check(cfg, overwrite):
    identity.check_same_job(cfg, _out(cfg), overwrite)


def _started(out, *extra):
    cfg = _cfg("cgan-digits.yaml", out, "train.steps=10", *extra)
    identity.start(cfg, _out(cfg), overwrite=False)
    return cfg


def test_learning_rate_and_batch_size_are_a_different_job(tmp_path):
    rec = identity.record(_cfg("cgan-digits.yaml", tmp_path / "o", "train.steps=10"))
    other = _cfg(
        "cgan-digits.yaml", tmp_path / "o", "train.steps=10", "train.lr_g=0.01", "train.batch_size=32"
    )
    assert identity.differences(rec, other) == ["train.batch_size: 16 -> 32", "train.lr_g: 0.0002 -> 0.01"]
    wider = _cfg("cgan-digits.yaml", tmp_path / "o", "train.steps=10", "model.g_width=48")
    assert identity.differences(rec, wider) == ["model.g_width: 8 -> 48"]
    vae = _cfg("vae-digits.yaml", tmp_path / "o", "train.steps=10")
    assert "model.arch: 'dcgan' -> 'vae'" in identity.differences(rec, vae)


def test_execution_keys_may_change_and_steps_may_grow(tmp_path):
    rec = identity.record(_cfg("cgan-digits.yaml", tmp_path / "o", "train.steps=10"))
    same_job = _cfg(
        "cgan-digits.yaml",
        f"file://{tmp_path}/o/",
        "train.steps=500",
        "train.log_every=7",
        "train.checkpoint_every=9",
        "scaling.num_workers=4",
        "scaling.use_gpu=true",
        "scaling.placement_strategy=SPREAD",
        "address=ray://127.0.0.1:10001",
        "storage.options.s3_additional_kwargs={ServerSideEncryption: AES256}",
    )
    assert identity.differences(rec, same_job) == []
    fewer = _cfg("cgan-digits.yaml", tmp_path / "o", "train.steps=5")
    assert identity.differences(rec, fewer) == ["train.steps: 10 -> 5 (may only grow, to continue training)"]


def test_keys_a_newer_genart_adds_are_not_compared(tmp_path):
    cfg = _cfg("cgan-digits.yaml", tmp_path / "o")
    rec = identity.record(cfg)
    del rec["identity"]["train.ema_start"]
    assert identity.differences(rec, cfg) == []


def test_a_different_config_is_refused_naming_the_keys_unless_overwrite(tmp_path):
    out = tmp_path / "o"
    _started(out)
    other = _cfg("cgan-digits.yaml", out, "train.steps=10", "train.lr_g=0.01")
    with pytest.raises(ConfigError) as err:
        identity.check_same_job(other, _out(other), overwrite=False)
    assert str(err.value) == (
        f"output {out} holds training by a different config (train.lr_g: 0.0002 -> 0.01); "
        "use the same config to continue, another output, or --overwrite to start over"
    )
    identity.check_same_job(other, _out(other), overwrite=True)
    _check(_cfg("cgan-digits.yaml", out, "train.steps=20"), overwrite=False)


def test_overwrite_deletes_only_the_outputs_training_state_by_literal_name():
    fs = fsspec.filesystem("memory")
    for base in ("/runs/col1", "/runs/col[1]"):  # `col[1]` is a glob pattern matching col1
        fs.pipe(f"{base}/train/checkpoint_000000/state.pt", b"s")
        fs.pipe(f"{base}/model/model.json", b"{}")
        fs.pipe(f"{base}/notes.txt", b"mine")
    cfg = _cfg("cgan-digits.yaml", "memory://runs/col[1]", "train.steps=10")
    _start(_cfg("cgan-digits.yaml", "memory://runs/col[1]", "train.steps=10", "train.seed=3"), False)
    identity.start(cfg, _out(cfg), overwrite=True)
    left = sorted(fs.find("/runs"))
    assert left == [
        "/runs/col1/model/model.json",
        "/runs/col1/notes.txt",
        "/runs/col1/train/checkpoint_000000/state.pt",
        "/runs/col[1]/_train.json",
        "/runs/col[1]/notes.txt",
    ]
    assert json.loads(fs.cat_file("/runs/col[1]/_train.json"))["identity"]["train.seed"] == 0


def test_overwrite_on_a_local_output(tmp_path):
    out = tmp_path / "o"
    _started(out, "train.seed=1")
    (out / "train" / "checkpoint_000001").mkdir(parents=True)
    (out / "model").mkdir()
    (out / "model" / "model.json").write_text("{}")
    _start(_cfg("cgan-digits.yaml", out, "train.steps=10"), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["_train.json"]


def test_an_unreadable_record_is_a_clear_error(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "_train.json").write_bytes(b"\x00garbage")
    with pytest.raises(StorageError, match=r"_train.json is unreadable .*; run with --overwrite to start"):
        _check(_cfg("cgan-digits.yaml", out), overwrite=False)


def test_an_output_of_an_older_genart_is_continued_with_a_warning(tmp_path, caplog):
    out = tmp_path / "o"
    (out / "train").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="genart.training.identity"):
        _check(_cfg("cgan-digits.yaml", out), overwrite=False)
    assert "holds training state but no _train.json" in caplog.text


def test_cli_refuses_a_different_config_with_exit_2_before_starting_ray(tmp_path):
    out = tmp_path / "o"
    _started(out)
    res = CliRunner().invoke(
        main,
        ["train", CONFIG, "--set", f"output={out}", "--set", "model.g_width=8", "--set", "model.d_width=8"]
        + ["--set", "train.steps=10", "--set", "train.lr_g=0.01", "--set", "train.batch_size=16"]
        + ["--set", "train.log_every=5", "--set", "scaling.cpus_per_worker=1000"],  # never trains
    )
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        f"error: output {out} holds training by a different config (train.lr_g: 0.0002 -> 0.01); "
        "use the same config to continue, another output, or --overwrite to start over"
    ]
    res = CliRunner().invoke(
        main,
        [
            "train",
            CONFIG,
            "--set",
            f"output={out}",
            "--set",
            "model.g_width=48",
            "--set",
            "train.batch_size=32",
            "--set",
            "scaling.cpus_per_worker=1000",  # never trains, even if the check let it through
        ],
    )
    assert res.exit_code == 2
    assert "model.g_width: 8 -> 48" in res.output and "train.batch_size: 16 -> 32" in res.output
    assert "model.d_width: 8 -> 32" in res.output


def test_train_help_names_overwrite():
    res = CliRunner().invoke(main, ["train", "--help"])
    assert res.exit_code == 0 and "--overwrite" in res.output


def test_the_train_job_entrypoint_takes_overwrite():
    import subprocess
    import sys

    from tests.config.test_configs import ROOT

    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs/train.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "--overwrite" in proc.stdout
