"""verify(): [] for a complete output; names tampered files, missing rows, duplicates, no _SUCCESS. No Ray."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genart.bundle import read_meta
from genart.config.generate import GenerateConfig
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.generation.runner import prepare_output
from genart.storage import packing
from genart.storage.fs import check_writable, get_fs
from genart.storage.verify import verify


def _write_output(tiny_bundle, tmp_path, layout: str = "files"):
    """A complete 500-image output written in-process by a GeneratorReplica (the actor's plain class)."""
    out = str(tmp_path / "out")
    cfg = GenerateConfig(
        kind="generate",
        model=tiny_bundle,
        output=out,
        count=500,
        shard_size=100,
        batch_size=32,
        layout=layout,
    )
    meta = read_meta(tiny_bundle, None)
    check_writable(out)
    fs, root = get_fs(out)
    prepare_output(fs, root, cfg, meta, False, "job-v")
    replica = GeneratorReplica(cfg, "job-v", meta["model_id"])
    for spec in Plan.from_config(cfg, meta["num_classes"]).pending():
        replica.run_shard(spec)
    (tmp_path / "out" / "_SUCCESS").write_text(json.dumps({"count": 500, "shards": 5}))
    return tmp_path / "out"


@pytest.fixture
def output(tiny_bundle, tmp_path):
    return _write_output(tiny_bundle, tmp_path)


def _rewrite(part, fn):
    table = pq.read_table(part)
    pq.write_table(fn(table), part)


def test_complete_output_verifies(output):
    assert verify(str(output)) == []
    assert len(list(output.glob("images/*/*.png"))) == 500


def test_tampered_file(output):
    victim = output / "images/00002/0000000217.png"
    victim.write_bytes(victim.read_bytes()[:-1])
    (output / "images/00004/0000000400.png").unlink()
    problems = verify(str(output))
    assert problems == [
        "id 217: images/00002/0000000217.png does not match its sha256 (changed or truncated)",
        "id 400: file images/00004/0000000400.png is missing",
    ]


def test_missing_and_duplicate_rows(output):
    _rewrite(output / "metadata/part-00001.parquet", lambda t: t.slice(1))  # drop id 100
    assert verify(str(output)) == [
        "1 ids have no row (first: 100)",
        "_SUCCESS says count 500, the metadata holds 499 rows",
    ]
    # id 305 twice
    _rewrite(output / "metadata/part-00003.parquet", lambda t: pa.concat_tables([t, t.slice(5, 1)]))
    problems = verify(str(output))
    assert "id 305 appears more than once (again in metadata/part-00003.parquet)" in problems


def test_incomplete_output(output):
    (output / "_SUCCESS").unlink()
    (output / "metadata/part-00004.parquet").unlink()
    problems = verify(str(output))
    assert problems[0] == f"{output}/_SUCCESS is missing: the job has not completed"
    assert "100 ids have no row (first: 400, 401, 402, 403, 404, 405, 406, 407, 408, 409)" in problems


def test_success_disagreeing(output):
    (output / "_SUCCESS").write_text(json.dumps({"count": 500, "shards": 6}))
    assert verify(str(output)) == ["_SUCCESS says 6 shards, metadata/ holds 5"]


def test_webdataset_output_verifies_and_names_tampered_members(tiny_bundle, tmp_path):
    out = _write_output(tiny_bundle, tmp_path, "webdataset")
    assert verify(str(out)) == []
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"{k:05d}.tar" for k in range(5)]
    assert not (out / "images").exists()
    tar = out / "shards/00002.tar"
    members = packing.read_tar(tar.read_bytes())
    assert len(members) == 200 and list(members)[:2] == ["0000000200.png", "0000000200.json"]
    members["0000000217.png"] = members["0000000217.png"][:-1]
    del members["0000000230.json"]
    tar.write_bytes(packing.build_tar(list(members.items())))
    (out / "shards/00004.tar").unlink()
    assert verify(str(out)) == [
        "id 217: shards/00002.tar:0000000217.png does not match its sha256 (changed or truncated)",
        "id 230: 0000000230.json is missing from shards/00002.tar",
        "shard 4: shards/00004.tar is missing",
    ]


def test_parquet_output_verifies_and_names_tampered_rows(tiny_bundle, tmp_path):
    out = _write_output(tiny_bundle, tmp_path, "parquet")
    assert verify(str(out)) == []
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "_job.json", "metadata"]

    def tamper(t):
        images = t.column("image").to_pylist()
        images[7]["bytes"] = images[7]["bytes"][:-1]
        i = t.schema.get_field_index("image")
        return t.set_column(i, "image", pa.array(images, t.schema.field("image").type))

    _rewrite(out / "metadata/part-00001.parquet", tamper)
    _rewrite(out / "metadata/part-00003.parquet", lambda t: t.drop_columns(["image"]))
    problems = verify(str(out))
    assert problems[0] == "id 107: the image in metadata/part-00001.parquet does not match its sha256"
    assert problems[1].startswith("metadata/part-00003.parquet: schema differs from the contract")


def test_rows_in_the_wrong_shard_and_a_job_without_shard_size(output):
    part1 = pq.read_table(output / "metadata/part-00001.parquet")
    _rewrite(output / "metadata/part-00003.parquet", lambda t: pa.concat_tables([t, part1.slice(50, 1)]))
    problems = verify(str(output))
    assert "metadata/part-00003.parquet: id 150 belongs to shard 1" in problems
    # an output whose _job.json does not say its shard_size: one bitmap of ids finds the duplicate instead
    job = json.loads((output / "_job.json").read_text())
    del job["config"]["shard_size"]
    (output / "_job.json").write_text(json.dumps(job))
    assert "id 150 appears more than once (again in metadata/part-00003.parquet)" in verify(str(output))
