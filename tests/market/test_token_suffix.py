"""`market.token_suffix: ""`: extension-less token files (tokenURI = baseURI + tokenId, as a stock ERC-721
contract builds it), served as application/json on S3. No Ray."""

from __future__ import annotations

import json

import boto3
import pytest
from pydantic import ValidationError

from genart.bundle import read_meta
from genart.config.generate import GenerateConfig, MarketConfig
from genart.generation.runner import job_record, prepare_output
from genart.market import json_put_options, read_tokens, recorded_suffix, token_path, write_collection
from genart.storage.fs import get_fs
from genart.storage.output import Output
from tests.market.conftest import BASE_URI, COUNT, market_cfg, run_without_ray

NO_SUFFIX = {"standard": "opensea", "base_uri": BASE_URI, "name": "Tiny Digits", "description": "test",
             "token_suffix": ""}  # fmt: skip


def test_token_path_rule():
    assert token_path(7) == "tokens/7.json" == token_path(7, ".json")
    assert token_path(7, "") == "tokens/7"
    with pytest.raises(ValueError, match="token suffix '.txt' is not one of"):
        token_path(7, ".txt")
    assert recorded_suffix({}) == ".json" and recorded_suffix({"token_suffix": ""}) == ""
    with pytest.raises(ValueError, match="market.token_suffix '.js'"):
        recorded_suffix({"token_suffix": ".js"})


@pytest.mark.parametrize("bad", [".JSON", "json", ".txt", None])
def test_other_suffixes_are_refused(bad):
    with pytest.raises(ValidationError, match="market.token_suffix|token_suffix"):
        MarketConfig(standard="opensea", base_uri=BASE_URI, token_suffix=bad)


def test_default_suffix_leaves_job_record_and_hash_unchanged(collection):
    cfg, meta, _ = collection
    record = job_record(cfg, meta, "job-1")
    assert "token_suffix" not in record["config"]["market"]  # outputs written before the key keep their hash
    bare = job_record(cfg.model_copy(update={"market": MarketConfig(**NO_SUFFIX)}), meta, "job-1")
    assert bare["config"]["market"]["token_suffix"] == ""
    assert bare["config_hash"] != record["config_hash"]  # a different output: a different job
    assert GenerateConfig.model_validate(bare["config"]).market.token_suffix == ""


def test_extension_less_tokens_locally(collection, tmp_path):
    cfg, meta, out = collection
    bare = market_cfg(cfg.model, str(tmp_path / "bare"), market=NO_SUFFIX)
    run_without_ray(bare, meta, {"job_id": "job-1", "model_id": meta["model_id"]})
    tokens = tmp_path / "bare" / "tokens"
    assert sorted(p.name for p in tokens.iterdir() if p.is_file()) == sorted(str(i) for i in range(COUNT))
    for i in (0, 31, COUNT - 1):
        # the same JSON as the .json variant of the same job, under the name baseURI + tokenId asks for
        assert json.loads((tokens / str(i)).read_bytes()) == json.loads(
            (out / "tokens" / f"{i}.json").read_bytes()
        )
    assert [i for i, _ in read_tokens(*get_fs(bare.output), range(3), "")] == [0, 1, 2]
    record = json.loads((tmp_path / "bare" / "collection.json").read_text())
    assert record["rarity"] == json.loads((out / "collection.json").read_text())["rarity"]
    # collection.json from the tokens themselves (no shard summaries: an older output) finds them too
    for p in (tokens / "_traits").iterdir():
        p.unlink()
    assert write_collection(bare, {"job_id": "job-1"}, Output.open(bare.output))["rarity"] == record["rarity"]
    assert json_put_options(get_fs(bare.output)[0]) == {}


def test_extension_less_tokens_on_s3_are_served_as_json(collection, s3_server, s3_bucket):
    local, meta, out = collection
    uri = f"{s3_bucket}/bare"
    cfg = market_cfg(local.model, uri, market=NO_SUFFIX)
    fs, root = get_fs(uri)
    job, _ = prepare_output(Output.open(uri), cfg, read_meta(local.model, None), False, "job-s3")
    run_without_ray(cfg, meta, job)
    s3 = boto3.client("s3", endpoint_url=s3_server)
    bucket = s3_bucket[len("s3://") :]
    keys = {o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="bare/tokens/")
            for o in p.get("Contents", [])}  # fmt: skip
    assert {k for k in keys if "_traits" not in k} == {f"bare/tokens/{i}" for i in range(COUNT)}
    for key in (
        "bare/tokens/0",
        "bare/tokens/59",
        "bare/tokens/_traits/part-00000.json",
        "bare/collection.json",
    ):
        obj = s3.get_object(Bucket=bucket, Key=key)
        assert obj["ContentType"] == "application/json"
        json.loads(obj["Body"].read())
    assert json.loads(s3.get_object(Bucket=bucket, Key="bare/tokens/7")["Body"].read()) == json.loads(
        (out / "tokens" / "7.json").read_bytes()
    )
    assert json_put_options(fs) == {"ContentType": "application/json"}


def test_verify_finds_extension_less_tokens(collection, tmp_path):
    from genart.generation.verify import verify

    local, meta, _ = collection
    uri = str(tmp_path / "bare")
    cfg = market_cfg(local.model, uri, market=NO_SUFFIX)
    fs, root = get_fs(uri)
    fs.makedirs(root, exist_ok=True)
    job, _ = prepare_output(Output.open(uri), cfg, read_meta(local.model, None), False, "job-v")
    run_without_ray(cfg, meta, job)
    fs.pipe_file(f"{root}/_SUCCESS", json.dumps({"count": COUNT, "shards": 3}).encode())
    assert verify(uri) == []
    fs.rm_file(f"{root}/tokens/31")
    assert verify(uri) == ["id 31: tokens/31 is missing"]


def test_token_path_is_defined_once():
    from genart.market import tokens
    from genart.storage import layout

    assert token_path is tokens.token_path is layout.token_path
    assert tokens.TOKEN_SUFFIXES is layout.TOKEN_SUFFIXES
