"""GeneratorReplica as a plain class (no Ray): a shard regenerates from its seeds, whatever the batch size."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

import genart
from genart.bundle import read_meta
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.images import decode


def test_shard_bytes_do_not_depend_on_batch_size(tiny_bundle, tmp_path, make_cfg):
    meta = read_meta(tiny_bundle, None)
    outs = []
    for batch in (1, 7, 64):
        cfg = make_cfg(tiny_bundle, str(tmp_path / f"b{batch}"), count=40, shard_size=20, batch_size=batch)
        replica = GeneratorReplica(cfg, "job", meta["model_id"])
        summary = replica.run_shard(Plan.from_config(cfg, 10).shard(1))
        assert (summary.shard, summary.n) == (1, 20)
        table = pq.read_table(tmp_path / f"b{batch}" / "metadata" / "part-00001.parquet")
        assert table.column("id").to_pylist() == list(range(20, 40))
        assert summary.bytes == sum(
            (tmp_path / f"b{batch}" / p).stat().st_size for p in table.column("path").to_pylist()
        )
        outs.append(table.column("sha256").to_pylist())
    assert outs[0] == outs[1] == outs[2]
    row = table.slice(5, 1).to_pylist()[0]
    stored = decode((tmp_path / "b64" / row["path"]).read_bytes())
    again = genart.load_bundle(tiny_bundle).generate([row["seed"]], [row["class_id"]])[0]
    assert np.array_equal(stored, again)  # bit-exact, not within a level (tests/generation/test_exact.py)


def test_lossy_formats_hash_the_stored_pixels(tiny_bundle, tmp_path, make_cfg):
    """With JPEG the phash column (and so the near-duplicate guarantee) is that of the decoded file, not of the
    pixels before encoding."""
    from genart.filters.dedupe import HashIndex
    from genart.filters.score import phash64

    meta = read_meta(tiny_bundle, None)
    cfg = make_cfg(
        tiny_bundle,
        str(tmp_path / "jpeg"),
        count=200,
        shard_size=200,
        batch_size=50,
        image={"format": "jpeg", "quality": 95},
        dedupe={"max_distance": 0},
    )
    index = HashIndex(0)
    replica = GeneratorReplica(cfg, "job", meta["model_id"], claim=index.claim)
    replica.run_shard(Plan.from_config(cfg, 10).shard(0))
    table = pq.read_table(tmp_path / "jpeg" / "metadata" / "part-00000.parquet")
    files = np.stack([decode((tmp_path / "jpeg" / p).read_bytes()) for p in table.column("path").to_pylist()])
    assert np.array_equal(table.column("phash").to_numpy(), phash64(files))
    assert len(index) == 200
