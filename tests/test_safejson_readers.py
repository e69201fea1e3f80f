"""Files genart reads back (job record, _SUCCESS, progress ledger, metrics.jsonl) holding a 5000-digit
integer or 100,000 nested `[` end in the module's clear error, never a ValueError/RecursionError. No Ray."""

from __future__ import annotations

import fsspec
import pytest

from genart.config.generate import GenerateConfig
from genart.errors import ConfigError, StorageError
from genart.generation.job import job_record, prepare_output
from genart.generation.ledger import ByteLedger
from genart.storage import safejson
from genart.storage.output import Output
from genart.views.evaluate import _training_metrics

HUGE_INT = b'{"job_id": ' + b"9" * 5000 + b"}"
DEEP = b"[" * 100_000
HOSTILE = [pytest.param(HUGE_INT, id="5000-digit-int"), pytest.param(DEEP, id="100000-nested")]


def _cfg(tmp_path) -> GenerateConfig:
    return GenerateConfig(kind="generate", model="m", output=str(tmp_path), count=4)


@pytest.mark.parametrize("blob", HOSTILE)
def test_a_hostile_job_record_is_a_config_error(tmp_path, blob):
    (tmp_path / "_job.json").write_bytes(blob)
    cfg = _cfg(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare_output(Output.open(cfg.output), cfg, {"model_id": "x"}, False, "j")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}/_job.json is not valid JSON (")
    assert msg.endswith("); pass --overwrite to start this output afresh") and len(msg) < 400


@pytest.mark.parametrize("blob", HOSTILE)
def test_a_hostile_success_file_resumes_the_job(tmp_path, blob):
    cfg = _cfg(tmp_path)
    rec, done = prepare_output(Output.open(cfg.output), cfg, {"model_id": "x"}, False, "j")
    assert done is None
    (tmp_path / "_SUCCESS").write_bytes(blob)
    again, done = prepare_output(Output.open(cfg.output), cfg, {"model_id": "x"}, False, "j2")
    assert (
        done is None and again["job_id"] == rec["job_id"] == job_record(cfg, {"model_id": "x"}, "j")["job_id"]
    )


@pytest.mark.parametrize("blob", HOSTILE)
def test_a_hostile_progress_ledger_is_ignored(tmp_path, blob):
    (tmp_path / "_progress.json").write_bytes(blob)
    ledger = ByteLedger(Output.at(fsspec.filesystem("file"), str(tmp_path)), 4)
    assert ledger._load() is None
    assert ledger.resume(set()) == set() and ledger.bytes == 0


@pytest.mark.parametrize("blob", HOSTILE)
def test_hostile_training_metrics_are_a_storage_error(tmp_path, blob):
    ck = tmp_path / "train" / "checkpoint_000001"
    ck.mkdir(parents=True)
    (ck / "metrics.jsonl").write_bytes(b'{"step": 1}\n\n' + blob + b"\n")
    with pytest.raises(StorageError) as err:
        _training_metrics(str(tmp_path / "model"))
    assert str(err.value).startswith(f"{ck}/metrics.jsonl line 3 is not valid JSON (")
    assert len(str(err.value)) < 300


def test_metrics_lines_must_be_objects():
    assert safejson.loads_lines('{"a": 1}\n\n{"b": 2}\n', "m") == [{"a": 1}, {"b": 2}]
    with pytest.raises(StorageError, match=r"^m line 2 is not a JSON object$"):
        safejson.loads_lines('{"a": 1}\n[1]\n', "m")
    with pytest.raises(StorageError, match=r"^m line 1 is not valid JSON \(nested too deeply\)$"):
        safejson.loads_lines("[" * 100_000, "m")


@pytest.mark.parametrize("blob", HOSTILE)
def test_a_hostile_synthesize_success_file_is_a_config_error(tmp_path, blob):
    from genart.config.synthesize import SynthesizeConfig
    from genart.synthesis.runner import _prepare

    (tmp_path / "_SUCCESS").write_bytes(blob)
    cfg = SynthesizeConfig(kind="synthesize", model="m", output=str(tmp_path))
    with pytest.raises(ConfigError) as err:
        _prepare(Output.open(cfg.output), cfg, {"model_id": "x"}, False)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}/_SUCCESS is not valid JSON (")
    assert msg.endswith("pass --overwrite to replace it") and len(msg) < 400
