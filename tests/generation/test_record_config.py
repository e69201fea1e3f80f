"""_job.json read back into a GenerateConfig by one function (generation/job.record_config), whose errors
verify lists as problems and preview raises as StorageError. No Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from genart.config.generate import GenerateConfig
from genart.errors import JobRecordError, StorageError
from genart.generation.job import job_record, record_config

ROOT = Path(__file__).resolve().parents[2]


def _record(**kw) -> dict:
    cfg = GenerateConfig(kind="generate", model="s3://b/m", output="s3://b/o", count=50, **kw)
    return json.loads(json.dumps(job_record(cfg, {"model_id": "m" * 64, "num_classes": 10}, "job-1")))


def test_a_written_record_reads_back_as_its_config():
    rec = _record(layout="parquet", image={"format": "webp", "quality": 70}, market={"token_suffix": ""})
    cfg = record_config(rec)
    assert isinstance(cfg, GenerateConfig)
    assert (cfg.count, cfg.layout, cfg.image.format, cfg.image.quality) == (50, "parquet", "webp", 70)
    assert (cfg.market.token_suffix, cfg.output) == ("", "s3://b/o")


def test_not_an_object():
    with pytest.raises(JobRecordError) as err:
        record_config([1, 2])
    assert err.value.problems == ["_job.json is not a JSON object"]
    assert isinstance(err.value, StorageError) and str(err.value) == "_job.json is not a JSON object"


def test_missing_record_and_config_keys_are_each_named():
    rec = _record()
    del rec["job_id"]
    rec["model_id"] = 7
    del rec["config"]["seed"]
    del rec["config"]["image"]
    with pytest.raises(JobRecordError) as err:
        record_config(rec)
    assert err.value.problems == [
        "_job.json: job_id is missing",
        "_job.json: model_id is not a string",
        "_job.json: config.seed is missing",
        "_job.json: config.image.format is missing",
    ]


def test_a_config_that_does_not_validate_names_its_key():
    rec = _record()
    rec["config"]["count"] = 0
    with pytest.raises(JobRecordError) as err:
        record_config(rec)
    assert err.value.problems == ["_job.json: config.count: Input should be greater than or equal to 1"]
    assert isinstance(err.value.__cause__, ValidationError)


def test_a_config_that_is_not_an_object_has_no_finding_of_its_own():
    rec = _record()
    rec["config"] = "junk"
    with pytest.raises(JobRecordError) as err:
        record_config(rec)
    assert err.value.problems == [] and str(err.value) == "_job.json is not a complete job record"


def test_verify_and_preview_read_the_config_through_it():
    for rel in ("genart/views/preview.py", "genart/generation/verify_rows.py"):
        text = (ROOT / rel).read_text()
        assert 'get("config"' not in text, rel
        assert "GenerateConfig.model_validate" not in text, rel
    assert "record_config(job)" in (ROOT / "genart/generation/verify.py").read_text()
    assert "record_config(job)" in (ROOT / "genart/views/preview.py").read_text()
