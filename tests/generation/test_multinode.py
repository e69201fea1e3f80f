"""A 4-node simulated cluster (ray.cluster_utils.Cluster on 127.0.0.1): 4 replicas, one per node, writing
webdataset shards to S3 (moto) exactly once. Slow: `make slow`."""

from __future__ import annotations

import os

import pytest

from genart.generation.runner import generate
from genart.ray_session import LOOPBACK_ONLY
from genart.storage.verify import verify


@pytest.mark.slow
def test_four_nodes_one_replica_each(tiny_bundle, s3_server, s3_bucket, ray_tmp, make_cfg):
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
        out = f"{s3_bucket}/four-nodes"
        cfg = make_cfg(tiny_bundle, out, count=2000, shard_size=100, replicas=4, layout="webdataset")
        summary = generate(cfg, progress=False)
        assert (summary["generated"], summary["shards"]) == (2000, 20)
        assert verify(out) == []
        replicas = list_actors(
            address=ray.get_runtime_context().gcs_address,
            filters=[("class_name", "=", "GeneratorReplica")],
            detail=True,
        )
        assert len(replicas) == 4 and len({a.node_id for a in replicas}) == 4  # one replica per node
    finally:
        ray.shutdown()
        cluster.shutdown()
