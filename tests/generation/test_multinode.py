"""A 4-node simulated cluster (ray.cluster_utils.Cluster on 127.0.0.1): 4 replicas, one per node, writing
webdataset shards to S3 (moto) exactly once. Slow: `make slow`."""

from __future__ import annotations

import pytest

from genart.generation.runner import generate
from genart.generation.verify import verify
from tests.conftest import actor_nodes


@pytest.mark.slow
def test_four_nodes_one_replica_each(tiny_bundle, s3_bucket, ray_cluster, make_cfg):
    ray_cluster(nodes=4, cpus_per_node=1)
    out = f"{s3_bucket}/four-nodes"
    cfg = make_cfg(tiny_bundle, out, count=2000, shard_size=100, replicas=4, layout="webdataset")
    summary = generate(cfg, progress=False)
    assert (summary.generated, summary.shards) == (2000, 20)
    assert verify(out) == []
    nodes = actor_nodes("GeneratorReplica")
    assert len(nodes) == 4 and len(set(nodes)) == 4  # one replica per node
