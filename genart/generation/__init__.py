"""Generation: plan -> replicas (sample + encode) -> shard writer -> commit."""
