"""Storage: URIs, path rules, shard commits, verification."""
