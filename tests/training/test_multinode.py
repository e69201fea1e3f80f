"""A 4-node simulated cluster (ray.cluster_utils.Cluster on 127.0.0.1): DDP training with 4 Ray Train
workers, one per node, over gloo. Slow: `make slow`."""

from __future__ import annotations

import json

import pytest

from genart.training.trainer import train
from tests.conftest import actor_nodes
from tests.training.test_trainer import _cfg


@pytest.mark.slow
def test_four_nodes_four_workers_one_per_node(tmp_path, ray_cluster):
    ray_cluster(nodes=4, cpus_per_node=1)
    # STRICT_SPREAD: one worker per node although two 0.5-CPU workers would fit on one; each node keeps
    # 0.5 CPU for Ray Data's split coordinator and tasks
    out = tmp_path / "o"
    cfg = _cfg(
        "cgan-digits.yaml",
        out,
        "train.steps=8",
        "train.log_every=2",
        "train.checkpoint_every=8",
        "scaling.num_workers=4",
        "scaling.cpus_per_worker=0.5",
        "scaling.placement_strategy=STRICT_SPREAD",
    )
    res = train(cfg)
    assert (res.world_size, res.steps) == (4, 8)
    assert [m["step"] for m in res.metrics] == [2, 4, 6, 8]  # each step reported exactly once
    assert {m["nodes"] for m in res.metrics} == {4}  # as the workers saw it over the process group
    nodes = actor_nodes("RayTrainWorker")
    assert len(nodes) == 4 and len(set(nodes)) == 4  # one worker per node
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["training"]["world_size"] == 4 and meta["training"]["steps"] == 8
    assert (out / "model" / "model.safetensors").stat().st_size > 0
