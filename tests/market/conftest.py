"""Fixtures for market tests: a small opensea collection written by GeneratorReplica without Ray."""

from __future__ import annotations

import pytest

from genart.config.generate import GenerateConfig
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.market import write_collection
from genart.storage.output import Output
from tests.conftest import make_tiny_bundle

BASE_URI = "ipfs://bafyCID/"
COUNT, SHARD = 60, 25  # three shards, the last one partial


def market_cfg(bundle: str, output: str, **overrides) -> GenerateConfig:
    data = {
        "kind": "generate",
        "model": bundle,
        "output": output,
        "count": COUNT,
        "seed": 3,
        "shard_size": SHARD,
        "batch_size": 16,
        "market": {"standard": "opensea", "base_uri": BASE_URI, "name": "Tiny Digits", "description": "test"},
    }
    data.update(overrides)
    return GenerateConfig.model_validate(data)


def run_without_ray(cfg: GenerateConfig, meta: dict, job: dict) -> None:
    replica = GeneratorReplica(cfg, job["job_id"], meta["model_id"])
    plan = Plan.from_config(cfg, meta["num_classes"])
    for k in range(plan.num_shards):
        replica.run_shard(plan.shard(k))
    write_collection(cfg, job, Output.open(cfg.output, cfg.storage.options))


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """(cfg, bundle meta, output Path) of a complete 60-item opensea output (no _job.json, no _SUCCESS)."""
    root = tmp_path_factory.mktemp("market")
    meta = make_tiny_bundle(str(root / "bundle"))
    cfg = market_cfg(str(root / "bundle"), str(root / "out"))
    run_without_ray(cfg, meta, {"job_id": "job-1", "model_id": meta["model_id"]})
    return cfg, meta, root / "out"
