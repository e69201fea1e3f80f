"""The output's location is not its identity: the same job spelled, copied or moved elsewhere resumes; a
different config is refused naming the keys. No Ray (outputs are written by the replica's plain class)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from genart.bundle import read_meta
from genart.config.generate import GenerateConfig
from genart.config.identity import dataset_digest, dataset_identity, same_job
from genart.config.synthesize import SynthesizeConfig
from genart.errors import ConfigError
from genart.generation.job import prepare_output
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.storage.fs import get_fs
from genart.storage.output import Output
from genart.synthesis.runner import _prepare


def _cfg(model: str, output: str, **kw) -> GenerateConfig:
    data = {"kind": "generate", "model": model, "output": output, "count": 40, "shard_size": 20, "seed": 3}
    return GenerateConfig.model_validate({**data, **kw})


def _write(cfg: GenerateConfig, finished: bool = True) -> dict:
    """A job at cfg.output, written in-process: _job.json, both shards, _SUCCESS."""
    meta = read_meta(cfg.model, None)
    fs, root = get_fs(cfg.output)
    fs.makedirs(root, exist_ok=True)
    job, _ = prepare_output(Output.open(cfg.output), cfg, meta, False, "job-1")
    replica = GeneratorReplica(cfg, "job-1", meta["model_id"])
    for spec in Plan.from_config(cfg, meta["num_classes"]).pending():
        replica.run_shard(spec)
    if finished:
        fs.pipe_file(f"{root}/_SUCCESS", json.dumps({"count": cfg.count, "job_id": "job-1"}).encode())
    return job


def _again(cfg: GenerateConfig):
    return prepare_output(Output.open(cfg.output), cfg, read_meta(cfg.model, None), False, "job-2")


@pytest.fixture
def written(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(_cfg(tiny_bundle, "out/x"))
    return tmp_path


@pytest.mark.parametrize("spelling", ["out/x/", "./out/x", "ABS", "ABS/", "file://ABS", "out//x"])
def test_the_same_output_spelled_differently_is_the_same_job(written, tiny_bundle, spelling):
    out = spelling.replace("ABS", str(written / "out" / "x"))
    job, done = _again(_cfg(tiny_bundle, out))
    assert (job["job_id"], done) == ("job-1", {"count": 40, "job_id": "job-1"})


def test_the_bundle_spelled_differently_or_moved_is_the_same_job(written, tiny_bundle, tmp_path):
    moved = str(tmp_path / "elsewhere" / "bundle")
    shutil.copytree(tiny_bundle, moved)
    for model in (tiny_bundle + "/", f"file://{tiny_bundle}", moved):
        job, _ = _again(_cfg(model, "out/x"))
        assert job["job_id"] == "job-1"


def test_a_copied_or_moved_folder_is_the_same_job(written, tiny_bundle, tmp_path):
    shutil.copytree(tmp_path / "out" / "x", tmp_path / "copy")
    os.rename(tmp_path / "out" / "x", tmp_path / "moved")
    for where in ("copy", "moved"):
        job, done = _again(_cfg(tiny_bundle, str(tmp_path / where)))
        assert job["job_id"] == "job-1" and done["job_id"] == "job-1"


def test_an_s3_copy_of_a_local_output_is_the_same_job(written, tiny_bundle, tmp_path, s3_bucket):
    fs, root = get_fs(f"{s3_bucket}/synced")
    local = tmp_path / "out" / "x"
    for p in sorted(local.rglob("*")):
        if p.is_file():
            fs.pipe_file(f"{root}/{p.relative_to(local).as_posix()}", p.read_bytes())
    job, done = _again(_cfg(tiny_bundle, f"{s3_bucket}/synced"))
    assert job["job_id"] == "job-1" and done["count"] == 40


def test_an_unfinished_copy_resumes_as_the_same_job(tiny_bundle, tmp_path):
    _write(_cfg(tiny_bundle, str(tmp_path / "a")), finished=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    job, done = _again(_cfg(tiny_bundle, str(tmp_path / "b") + "/"))
    assert (job["job_id"], done) == ("job-1", None)


def test_a_different_config_is_still_refused_naming_the_keys(written, tiny_bundle):
    with pytest.raises(ConfigError) as err:
        _again(_cfg(tiny_bundle, "out/x/", count=60, seed=4, replicas=3))
    assert str(err.value) == (
        "out/x/ holds a different job (job job-1); differing keys: count, seed. "
        "Pass --overwrite to replace it, or choose another output"
    )


def test_another_bundle_is_refused(written, tiny_bundle, tmp_path):
    from tests.conftest import make_tiny_bundle

    other = str(tmp_path / "other-bundle")
    make_tiny_bundle(other, seed=5)
    with pytest.raises(ConfigError, match=r"differing keys: model_id \(the bundle's weights changed\)\. "):
        _again(_cfg(other, "out/x"))


def test_records_of_0_1_0_keep_resuming(tiny_bundle):
    """A record's stored config_hash is what 0.1.0 wrote: recomputed with its own output and model URIs."""
    cfg = _cfg(tiny_bundle, "/old/place")
    from genart.generation.job import job_record

    old = job_record(cfg, {"model_id": "m1"}, "j")
    assert same_job(old, _cfg("s3://b/bundle", "s3://elsewhere/x", replicas=5), "m1")
    assert not same_job(old, _cfg("s3://b/bundle", "s3://elsewhere/x"), "m2")
    assert not same_job(old, _cfg("s3://b/bundle", "s3://elsewhere/x", seed=9), "m1")
    assert not same_job({**old, "config": "junk"}, cfg, "m1")


def _synth(output: str, model: str = "m", **kw) -> SynthesizeConfig:
    return SynthesizeConfig.model_validate({"kind": "synthesize", "model": model, "output": output, **kw})


def _synth_success(tmp_path, cfg: SynthesizeConfig, legacy: bool = False) -> None:
    fs, root = get_fs(cfg.output)
    fs.makedirs(root, exist_ok=True)
    done = {"items": 1, "model_id": "m1", "config_hash": dataset_digest(cfg)}
    if not legacy:
        done["identity"] = dataset_identity(cfg, "m1")
    fs.pipe_file(f"{root}/_SUCCESS", json.dumps(done).encode())


def test_synthesize_identity_ignores_the_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _synth_success(tmp_path, _synth("ds", model="bundle"))
    shutil.copytree(tmp_path / "ds", tmp_path / "copy")
    for out, model in (
        ("ds/", "bundle"),
        (str(tmp_path / "ds"), "./bundle"),
        (f"file://{tmp_path}/copy", "b2"),
    ):
        cfg = _synth(out, model=model, replicas=3)
        assert _prepare(Output.open(out), cfg, {"model_id": "m1"}, False).items == 1
    with pytest.raises(ConfigError, match="holds a dataset synthesized with a different config"):
        _prepare(Output.open("ds"), _synth("ds", seed=99), {"model_id": "m1"}, False)
    with pytest.raises(ConfigError, match="holds a dataset synthesized with a different config"):
        _prepare(Output.open("ds"), _synth("ds"), {"model_id": "m2"}, False)


def test_synthesize_datasets_of_0_1_0_resume_at_the_same_spelling(tmp_path):
    cfg = _synth(str(tmp_path / "ds"))
    _synth_success(tmp_path, cfg, legacy=True)
    assert _prepare(Output.open(cfg.output), cfg, {"model_id": "m1"}, False).items == 1
