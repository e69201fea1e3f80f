"""verify(): [] for a complete output; names tampered files, missing rows, duplicates, no _SUCCESS. No Ray."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from genart.bundle import read_meta
from genart.cli import main
from genart.config.generate import GenerateConfig
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.generation.runner import prepare_output
from genart.generation.verify import verify
from genart.market import write_collection
from genart.storage import packing
from genart.storage.fs import check_writable
from genart.storage.output import Output


def _write_output(tiny_bundle, tmp_path, layout: str = "files", market: dict | None = None):
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
        market=market or {},
    )
    meta = read_meta(tiny_bundle, None)
    check_writable(out)
    job, _ = prepare_output(Output.open(out), cfg, meta, False, "job-v")
    replica = GeneratorReplica(cfg, "job-v", meta["model_id"])
    for spec in Plan.from_config(cfg, meta["num_classes"]).pending():
        replica.run_shard(spec)
    write_collection(
        cfg, job, Output.open(cfg.output, cfg.storage.options)
    )  # collection.json with market.standard: opensea (as the runner does)
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
    assert verify(str(output)) == [
        "_SUCCESS says 6 shards, the plan has 5",
        "_SUCCESS says 6 shards, metadata/ holds 5",
    ]


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


BASE = "https://cdn.example.com/v/"
OPENSEA = {"standard": "opensea", "base_uri": BASE, "name": "Verified", "description": "d"}


@pytest.fixture(scope="module")
def opensea_once(tmp_path_factory):
    from tests.conftest import make_tiny_bundle

    root = tmp_path_factory.mktemp("opensea")
    make_tiny_bundle(str(root / "bundle"))
    return _write_output(str(root / "bundle"), root, market=OPENSEA)


@pytest.fixture
def opensea(opensea_once, tmp_path):
    """A fresh copy of a complete 500-item opensea output (tokens, trait summaries, collection.json)."""
    return shutil.copytree(opensea_once, tmp_path / "out")


def _token(out, i: int) -> dict:
    return json.loads((out / "tokens" / f"{i}.json").read_text())


def test_opensea_output_verifies(opensea):
    assert verify(str(opensea)) == []
    assert len(list(opensea.glob("tokens/*.json"))) == 500 and (opensea / "collection.json").exists()
    assert _token(opensea, 217) | {"attributes": []} == {
        "name": "Verified #217",
        "description": "d",
        "image": BASE + "images/00002/0000000217.png",
        "attributes": [],
    }
    result = CliRunner().invoke(main, ["verify", str(opensea)])
    assert result.exit_code == 0 and result.output.strip() == f"OK {opensea}"


def test_deleted_token_fails_verify(opensea):
    (opensea / "tokens/217.json").unlink()
    assert verify(str(opensea)) == ["id 217: tokens/217.json is missing"]
    result = CliRunner().invoke(main, ["verify", str(opensea)])
    assert result.exit_code == 1 and "FAIL id 217: tokens/217.json is missing" in result.output


def test_wrong_image_url_and_name_fail_verify(opensea):
    token = _token(opensea, 42)
    (opensea / "tokens/42.json").write_text(json.dumps({**token, "image": "ipfs://OLD/images/00000/42.png"}))
    token = _token(opensea, 301)
    (opensea / "tokens/301.json").write_text(json.dumps({**token, "name": "Verified #310"}))
    (opensea / "tokens/400.json").write_text('{"name": "Verified #400", "image": ')
    problems = verify(str(opensea))
    assert problems[:2] == [
        "id 42: tokens/42.json image is 'ipfs://OLD/images/00000/42.png', expected "
        "'https://cdn.example.com/v/images/00000/0000000042.png' (market.base_uri + its path)",
        "id 301: tokens/301.json name is 'Verified #310', expected 'Verified #301'",
    ]
    assert len(problems) == 3 and problems[2].startswith("id 400: tokens/400.json is not valid JSON (")


def test_collection_json_missing_or_miscounted_after_success(opensea):
    (opensea / "collection.json").unlink()
    assert verify(str(opensea)) == [f"{opensea}/collection.json is missing although _SUCCESS exists"]
    result = CliRunner().invoke(main, ["verify", str(opensea)])
    assert result.exit_code == 1 and "collection.json is missing although _SUCCESS exists" in result.output
    (opensea / "collection.json").write_text(json.dumps({"item_count": 499}))
    assert verify(str(opensea)) == ["collection.json says item_count 499, _SUCCESS says count 500"]
    # before _SUCCESS, no collection.json is expected yet: only the missing _SUCCESS is reported
    (opensea / "collection.json").unlink()
    (opensea / "_SUCCESS").unlink()
    assert verify(str(opensea)) == [f"{opensea}/_SUCCESS is missing: the job has not completed"]


def test_many_missing_tokens_are_counted_not_listed(opensea):
    for i in range(100, 130):
        (opensea / "tokens" / f"{i}.json").unlink()
    problems = verify(str(opensea))
    assert problems == [f"id {i}: tokens/{i}.json is missing" for i in range(100, 120)] + [
        "... and 10 more missing-token problems"
    ]


def test_tokens_are_not_checked_without_opensea(output):
    assert not (output / "tokens").exists() and verify(str(output)) == []


def test_verify_reads_the_parsed_config_and_the_raw_dict_only_without_one():
    from genart.generation.verify_rows import JobSettings, job_settings

    cfg = GenerateConfig.model_validate(
        {"kind": "generate", "model": "m", "output": "o", "count": 10, "layout": "files",
         "dedupe": {"max_distance": "4"}, "market": {"standard": "opensea", "base_uri": "ipfs://x/"}}
    )  # fmt: skip
    raw = {"layout": "webdataset", "dedupe": {"max_distance": "4"}, "market": "junk"}
    got = job_settings(cfg, raw)
    assert (got.layout, got.min_score, got.max_distance) == ("files", None, 4)
    assert got.market["standard"] == "opensea" and got.market["base_uri"] == "ipfs://x/"
    assert job_settings(None, raw) == JobSettings("webdataset", None, "4", {})
    assert job_settings(None, {}) == JobSettings("files", None, None, {})
