"""A 4-node simulated cluster (ray.cluster_utils.Cluster on 127.0.0.1): DDP training with 4 Ray Train
workers, one per node, over gloo. Slow: `make slow`."""

from __future__ import annotations

import json
import os

import pytest

from genart.ray_session import LOOPBACK_ONLY
from genart.training.trainer import train
from tests.training.test_trainer import _cfg


@pytest.mark.slow
def test_four_nodes_four_workers_one_per_node(tmp_path, s3_server, ray_tmp):
    import ray
    from ray.cluster_utils import Cluster
    from ray.util.state import list_actors

    assert os.environ.get(LOOPBACK_ONLY) == "0"  # else Ray binds the host's outward address
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": True,
                        "dashboard_host": "127.0.0.1", "temp_dir": ray_tmp},
    )  # fmt: skip
    try:
        for _ in range(3):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 4
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
        workers = list_actors(
            address=ray.get_runtime_context().gcs_address,
            filters=[("class_name", "=", "RayTrainWorker")],
            detail=True,
        )
        assert len(workers) == 4 and len({a.node_id for a in workers}) == 4  # one worker per node
        meta = json.loads((out / "model" / "model.json").read_text())
        assert meta["training"]["world_size"] == 4 and meta["training"]["steps"] == 8
        assert (out / "model" / "model.safetensors").stat().st_size > 0
    finally:
        ray.shutdown()
        cluster.shutdown()
