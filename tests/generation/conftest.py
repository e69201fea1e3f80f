"""Fixtures for generation tests: config factories and a bundle slow enough to kill things mid-job."""

from __future__ import annotations

import pytest

from genart.config.generate import GenerateConfig


def make_generate_cfg(model: str, output: str, **overrides) -> GenerateConfig:
    """A validated GenerateConfig (small shards, 2 replicas) with `overrides` applied: what make_cfg makes."""
    data = {
        "kind": "generate",
        "model": model,
        "output": output,
        "count": 2000,
        "seed": 7,
        "replicas": 2,
        "shard_size": 200,
        "batch_size": 64,
    }
    data.update(overrides)
    return GenerateConfig.model_validate(data)


@pytest.fixture
def make_cfg():
    """make_cfg(model, output, **overrides) -> a validated GenerateConfig (small shards, 2 replicas)."""
    return make_generate_cfg


@pytest.fixture
def slow_bundle(tmp_path):
    """A wider (g_width 128) conditional DCGAN bundle: ~2-4 ms per image per core on the block16 CPU path
    (as slow as g_width 64 was one item at a time), so a 3,000-image job runs long enough on 2 cores to
    kill a replica or the driver after its first commits."""
    from genart.bundle import save_untrained_bundle
    from genart.bundle.store import TINY_DCGAN

    uri = str(tmp_path / "slow-bundle")
    save_untrained_bundle(uri, {**TINY_DCGAN, "g_width": 128}, seed=1)
    return uri
