"""generate() writing to S3 (moto's server over HTTP, through s3fs) with a real local Ray: the layout,
resume, verify, and no credential anywhere in the outputs, logs or progress output."""

from __future__ import annotations

import json
import logging

import boto3
import pyarrow.parquet as pq
import pytest

from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.storage.fs import get_fs

SECRET = "testing-secret-do-not-leak"


@pytest.fixture(scope="module")
def ray_with_s3_env(s3_server, ray_local):
    """Ray started after the moto fixture set AWS_*: its workers inherit the endpoint and credentials."""
    return ray_local


def objects(endpoint: str, bucket: str) -> dict[str, dict]:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def test_generate_to_s3(ray_with_s3_env, s3_server, s3_bucket, tiny_bundle, make_cfg, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="genart")
    out = f"{s3_bucket}/collections/run1"
    # credentials given in the config's storage options must reach the workers, never the output
    opts = {"key": "testing-key-id", "secret": SECRET}
    cfg = make_cfg(tiny_bundle, out, count=400, shard_size=100, storage={"options": opts})
    summary = generate(cfg, progress=True)
    assert (summary.count, summary.shards, summary.generated) == (400, 4, 400)

    bucket = s3_bucket.removeprefix("s3://")
    objs = objects(s3_server, bucket)
    prefix = "collections/run1/"
    names = sorted(k.removeprefix(prefix) for k in objs)
    assert names[:2] == ["_SUCCESS", "_job.json"] and len(names) == 2 + 4 + 400
    assert [n for n in names if n.startswith("metadata/")] == [
        f"metadata/part-{k:05d}.parquet" for k in range(4)
    ]
    fs, root = get_fs(out, opts)
    with fs.open(f"{root}/metadata/part-00003.parquet", "rb") as f:
        part = pq.read_table(f)
    assert part.column("id").to_pylist() == list(range(300, 400))
    assert verify(out, opts) == []

    s3 = boto3.client("s3", endpoint_url=s3_server)
    bodies = fs.cat([f"{bucket}/{key}" for key in objs])  # concurrent GETs
    assert len(bodies) == len(objs) and not [k for k, body in bodies.items() if SECRET.encode() in body]
    job = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "_job.json")["Body"].read())
    assert "storage" not in job["config"]
    printed = capfd.readouterr()
    assert SECRET not in printed.out + printed.err and SECRET not in caplog.text
    assert "shards 4/4" in printed.err

    # an interrupted job on S3 resumes: committed parts are not rewritten (same ETag and time)
    s3.delete_object(Bucket=bucket, Key=prefix + "_SUCCESS")
    s3.delete_object(Bucket=bucket, Key=prefix + "metadata/part-00002.parquet")
    before = {
        k: (o["ETag"], o["LastModified"]) for k, o in objects(s3_server, bucket).items() if "/metadata/" in k
    }
    again = generate(cfg, progress=False)
    assert (again.generated, again.resumed_shards) == (100, 3)
    after = {
        k: (o["ETag"], o["LastModified"]) for k, o in objects(s3_server, bucket).items() if "/metadata/" in k
    }
    assert {k: after[k] for k in before} == before and len(after) == 4
    assert verify(out, opts) == []
