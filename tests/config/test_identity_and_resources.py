"""Issue 11: the job identity is written once (genart/config/identity.py) and generate and synthesize share one
typed run-resources block, with their key order (so _job.json's) and validation-error order unchanged."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from genart.config import identity
from genart.config.common import RunResources
from genart.config.generate import GenerateConfig
from genart.config.loader import load_config
from genart.config.synthesize import SynthesizeConfig

ROOT = Path(__file__).resolve().parents[2]
GENERATE_KEYS = [
    "kind", "model", "output", "count", "seed", "replicas", "shard_size", "batch_size", "truncation",
    "cpus_per_replica", "gpus_per_replica", "max_in_flight", "max_retries", "shard_timeout_s", "in_process_below_s",
    "filter",
    "dedupe", "image", "layout", "classes", "market", "storage", "address", "inference", "variations",
    "provenance",
]  # fmt: skip
SYNTHESIZE_KEYS = [
    "kind", "model", "output", "per_class", "splits", "seed", "replicas", "batch_size", "shard_size",
    "candidate_shard_size", "cpus_per_replica", "gpus_per_replica", "keep_candidates", "dedupe", "filter",
    "storage", "address", "provenance",
]  # fmt: skip


def test_synthesize_uses_the_identity_rules_of_config_identity():
    from genart.synthesis import runner

    assert runner.dataset_digest is identity.dataset_digest
    assert runner.dataset_identity is identity.dataset_identity
    for name in ("EXECUTION_KEYS", "PRIVATE_KEYS", "LOCATION_KEYS", "_exclude", "config_hash"):
        assert not hasattr(runner, name), name


def test_training_identity_uses_the_one_flatten_helper():
    from genart.training import identity as train_identity

    assert train_identity.flatten is identity.flatten
    assert train_identity.TRAIN_EXECUTION_KEYS == {"output", "address", "storage", "scaling"}
    assert not hasattr(train_identity, "EXECUTION_KEYS") and not hasattr(train_identity, "_flatten")
    assert identity.flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1]}) == {
        "a.b": 1,
        "a.c.d": None,
        "e": [1],
    }


def test_no_module_keeps_its_own_copy_of_the_identity_key_sets():
    """A set literal holding both "storage" and "address" (PRIVATE_KEYS) or both "output" and "model"
    (LOCATION_KEYS) in the generate or synthesize stages is a copy of the identity rule (training has its
    own, different identity: training/identity.py)."""
    copies = []
    for path in sorted(
        [*(ROOT / "genart/generation").rglob("*.py"), *(ROOT / "genart/synthesis").rglob("*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Set):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"storage", "address"} <= names or {"output", "model"} <= names:
                    copies.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert copies == []


def test_differing_keys_leave_out_location_execution_and_private_keys():
    old = {
        "config": {"output": "a", "replicas": 1, "seed": 1, "filter": {"max_attempts": 3}},
        "model_id": "m",
    }
    new = {
        "config": {"output": "b", "replicas": 9, "seed": 2, "filter": {"max_attempts": 9}},
        "model_id": "n",
    }
    assert identity.differing_keys(old, new) == ["seed", "model_id (the bundle's weights changed)"]
    assert identity.differing_keys({"config": "junk", "model_id": "n"}, new) == ["seed"]


def test_both_job_configs_inherit_the_run_resources():
    assert issubclass(GenerateConfig, RunResources) and issubclass(SynthesizeConfig, RunResources)
    shared = {"replicas", "batch_size", "cpus_per_replica", "gpus_per_replica", "storage", "address"}
    assert set(RunResources.model_fields) == shared
    for cls in (GenerateConfig, SynthesizeConfig):
        for key in shared:
            assert cls.model_fields[key] is RunResources.model_fields[key] or (
                repr(cls.model_fields[key]) == repr(RunResources.model_fields[key])
            )


def test_key_order_is_the_shipped_one():
    assert list(GenerateConfig.model_fields) == GENERATE_KEYS
    assert list(SynthesizeConfig.model_fields) == SYNTHESIZE_KEYS
    gen = load_config(str(ROOT / "configs/generate/digits.yaml"))
    syn = load_config(str(ROOT / "configs/synthesize/digits.yaml"))
    assert list(gen.model_dump(mode="json")) == GENERATE_KEYS
    assert list(syn.model_dump(mode="json")) == SYNTHESIZE_KEYS


def test_validation_errors_keep_the_field_order():
    with pytest.raises(ValidationError) as exc:
        GenerateConfig(kind="generate", model="m", output="o", count=0, replicas=0, batch_size=0, address=3)
    assert [e["loc"][0] for e in exc.value.errors()] == ["count", "replicas", "batch_size", "address"]
    with pytest.raises(ValidationError) as exc:
        SynthesizeConfig(
            kind="synthesize", model="m", output="o", replicas=0, shard_size=0, gpus_per_replica=2.5
        )
    assert [e["loc"][0] for e in exc.value.errors()] == ["replicas", "shard_size", "gpus_per_replica"]


def test_a_field_order_that_misses_a_key_is_refused_at_import():
    with pytest.raises(TypeError, match=r"missing \['address'\], unknown \['nope'\]"):

        class Broken(RunResources):
            FIELD_ORDER: ClassVar[tuple[str, ...]] = (
                "replicas", "batch_size", "cpus_per_replica", "gpus_per_replica", "storage", "nope",
            )  # fmt: skip
