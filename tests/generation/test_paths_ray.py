"""generate/synthesize on a real local Ray with hostile output names: `col[1]` with --overwrite never touches
`col1` (local and S3), --overwrite deletes only once the job is known to run, a corrupt part is redone."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from genart.errors import BundleError, ClusterError, ConfigError
from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.storage.fs import get_fs
from genart.storage.output import Output
from tests.generation.conftest import make_generate_cfg


def _cfg(make_cfg, model, out, **kw):
    return make_cfg(model, out, **{"count": 40, "shard_size": 20, "replicas": 1, "batch_size": 20, **kw})


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _check_output(fs, root: str, seed: int, count: int = 40) -> None:
    """The output holds exactly this job: every id once, each image's bytes as its row says, nothing else."""
    fs.invalidate_cache(root)
    files = {p.removeprefix(root + "/") for p in fs.find(root)}
    rows = []
    for part in sorted(f for f in files if f.startswith("metadata/")):
        with fs.open(f"{root}/{part}", "rb") as f:
            rows += pq.read_table(f).to_pylist()
    assert sorted(r["id"] for r in rows) == list(range(count))
    assert json.loads(fs.cat_file(f"{root}/_job.json"))["config"]["seed"] == seed
    for r in rows:
        assert hashlib.sha256(fs.cat_file(f"{root}/{r['path']}")).hexdigest() == r["sha256"]
    assert files == {"_SUCCESS", "_job.json"} | {r["path"] for r in rows} | {
        f"metadata/part-{k:05d}.parquet" for k in range(count // 20)
    }


def test_overwrite_of_col_brackets_never_touches_col1_locally(ray_local, tiny_bundle, make_cfg, tmp_path):
    generate(_cfg(make_cfg, tiny_bundle, str(tmp_path / "col1")), progress=False)
    before = _snapshot(tmp_path / "col1")
    target = str(tmp_path / "col[1]")
    generate(_cfg(make_cfg, tiny_bundle, target, seed=1), progress=False)
    stale = tmp_path / "col[1]" / "images" / "00009"
    stale.mkdir()
    (stale / "0000000999.png").write_bytes(b"stale")
    generate(_cfg(make_cfg, tiny_bundle, target, seed=2), overwrite=True, progress=False)
    assert _snapshot(tmp_path / "col1") == before and verify(str(tmp_path / "col1")) == []
    fs, root = get_fs(target)
    _check_output(fs, root, seed=2)
    assert verify(target) == []  # verify reads col[1]'s own files (no batched fs.cat, which globs)


def test_overwrite_of_col_brackets_never_touches_col1_on_s3(
    ray_local, s3_server, s3_bucket, tiny_bundle, make_cfg
):
    bucket = s3_bucket.removeprefix("s3://")
    s3 = boto3.client("s3", endpoint_url=s3_server)

    def objects(prefix: str) -> dict[str, str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    generate(_cfg(make_cfg, tiny_bundle, f"{s3_bucket}/col1"), progress=False)
    before = objects("col1/")
    assert len(before) == 2 + 2 + 40
    target = f"{s3_bucket}/col[1]"
    generate(_cfg(make_cfg, tiny_bundle, target, seed=1), progress=False)
    s3.put_object(Bucket=bucket, Key="col[1]/images/00009/0000000999.png", Body=b"stale")
    generate(_cfg(make_cfg, tiny_bundle, target, seed=2), overwrite=True, progress=False)
    assert objects("col1/") == before and verify(f"{s3_bucket}/col1") == []
    fs, root = get_fs(target)
    _check_output(fs, root, seed=2)
    assert verify(target) == []  # verify reads col[1]'s own files (no batched fs.cat, which globs)


@pytest.mark.parametrize("name", ["out put & more #1 %20 grüße"], ids=["hostile"])
def test_hostile_names_round_trip_on_s3(ray_local, s3_bucket, tiny_bundle, make_cfg, name):
    out = f"{s3_bucket}/{name}"
    generate(_cfg(make_cfg, tiny_bundle, out), progress=False)
    assert verify(out) == []
    fs, root = get_fs(out)
    _check_output(fs, root, seed=7)
    again = generate(_cfg(make_cfg, tiny_bundle, out + "/"), progress=False)  # resumes: nothing to do
    assert again.generated == 40 and again.resumed_shards == 0


@pytest.fixture(scope="module")
def made_once(ray_local, tmp_path_factory):
    """(bundle, output, saved copy of the output) of one complete job (_cfg's 40 items), generated once per
    module: `complete` puts the copy back at the same path (the job records its model and output)."""
    from tests.conftest import make_tiny_bundle

    root = tmp_path_factory.mktemp("complete")
    bundle, out = str(root / "bundle"), root / "done"
    make_tiny_bundle(bundle)
    generate(_cfg(make_generate_cfg, bundle, str(out)), progress=False)
    shutil.copytree(out, root / "saved")
    return bundle, out, root / "saved"


@pytest.fixture
def complete(made_once):
    """(output, its _snapshot, bundle): a complete job's output, as generated, for this test to change."""
    bundle, out, saved = made_once
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(saved, out)
    return out, _snapshot(out), bundle


def test_overwrite_that_cannot_get_resources_deletes_nothing(complete, make_cfg):
    out, before, tiny_bundle = complete
    with pytest.raises(ClusterError, match=r"^generate: 64 x \(1 CPU, 0 GPU\) needs 64 CPU"):
        generate(_cfg(make_cfg, tiny_bundle, str(out), replicas=64), overwrite=True, progress=False)
    assert _snapshot(out) == before and verify(str(out)) == []


def test_overwrite_with_a_broken_bundle_deletes_nothing(complete, make_cfg, tmp_path):
    out, before, tiny_bundle = complete
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(BundleError, match="the weights were changed or truncated"):
        generate(_cfg(make_cfg, str(broken), str(out), seed=9), overwrite=True, progress=False)
    assert _snapshot(out) == before and verify(str(out)) == []


def test_overwrite_with_classes_outside_the_model_deletes_nothing(complete, make_cfg):
    out, before, tiny_bundle = complete
    with pytest.raises(ConfigError) as err:
        generate(
            _cfg(make_cfg, tiny_bundle, str(out), classes={"mode": "list", "ids": [99]}),
            overwrite=True,
            progress=False,
        )
    assert str(err.value) == "classes.ids: [99] are not classes of this model (it has 10: 0..9)"
    assert _snapshot(out) == before


def test_a_truncated_part_is_redone_on_resume(complete, make_cfg):
    out, _, tiny_bundle = complete
    (out / "_SUCCESS").unlink()
    part = out / "metadata" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    summary = generate(_cfg(make_cfg, tiny_bundle, str(out)), progress=False)
    assert (summary.generated, summary.resumed_shards) == (20, 1)
    assert verify(str(out)) == []


@pytest.mark.parametrize("mode", ["round_robin", "list"])
def test_classes_outside_the_model_exit_2_before_anything_is_written(tiny_bundle, tmp_path, mode):
    from click.testing import CliRunner

    from genart.cli import main

    out = tmp_path / "fresh"
    config = Path(__file__).resolve().parents[2] / "configs" / "generate" / "digits.yaml"
    args = ["generate", str(config), "--set", f"model={tiny_bundle}", "--set", f"output={out}"]
    args += ["--set", f"classes.mode={mode}", "--set", "classes.ids=[99]", "--overwrite"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: classes.ids: [99] are not classes of this model (it has 10: 0..9)"
    ]
    assert not out.exists()


def test_a_corrupt_part_the_ledger_accounts_for_is_redone_with_dedupe(
    ray_local, tiny_bundle, make_cfg, tmp_path
):
    """The ledger skips footer reads for the shards it accounts for; the near-duplicate index, which reads
    every committed part, then finds the damage and the shard is redone instead of the job crashing."""
    from genart.generation.ledger import ByteLedger

    out = tmp_path / "dd"
    cfg = _cfg(make_cfg, tiny_bundle, str(out), count=60, dedupe={"max_distance": 0})
    first = generate(cfg, progress=False)
    (out / "_SUCCESS").unlink()
    (out / "metadata" / "part-00000.parquet").unlink()  # an interrupted run: shard 0 not committed
    fs, root = get_fs(str(out))
    ledger = ByteLedger(Output.at(fs, root), 3)  # ... and its ledger accounts for shards 1 and 2
    ledger.add(1, 1)
    ledger.add(2, 1)
    ledger.save(force=True)
    part = out / "metadata" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:200])
    summary = generate(cfg, progress=False)
    assert (summary.generated, summary.resumed_shards, summary.job_id) == (40, 1, first.job_id)
    assert verify(str(out)) == []


def test_a_truncated_part_is_redone_on_resume_with_dedupe(ray_local, tiny_bundle, make_cfg, tmp_path):
    out = tmp_path / "dd2"
    cfg = _cfg(make_cfg, tiny_bundle, str(out), dedupe={"max_distance": 0})
    generate(cfg, progress=False)
    (out / "_SUCCESS").unlink()
    part = out / "metadata" / "part-00001.parquet"
    part.write_bytes(b"")
    summary = generate(cfg, progress=False)
    assert (summary.generated, summary.resumed_shards) == (20, 1)
    assert verify(str(out)) == []
