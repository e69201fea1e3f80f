# ruff: noqa: F811  (pytest fixtures imported from test_verify_tampered)
"""`genart verify` on hostile records: it reports, in bounded time and memory, and never crashes. No Ray.

Each case here hung, ran out of memory, ended in a traceback or said OK before the fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from genart.cli import main
from genart.generation.verify import verify
from tests.generation.test_verify_tampered import _fails, _job, out, output_once  # noqa: F401


def _write_job(out, fn):
    job = _job(out)
    fn(job)
    (out / "_job.json").write_text(json.dumps(job))


def test_huge_success_count_is_refused_in_bounded_time(out):
    (out / "_SUCCESS").write_text(json.dumps({"count": 10**14, "shards": 5}))
    start = time.monotonic()
    problems = _fails(out, "_SUCCESS says count 100000000000000, _job.json says 500")
    assert time.monotonic() - start < 30
    assert not any("ids have no row" in p for p in problems)


def test_huge_count_without_job_record_is_not_allocated(out):
    (out / "_job.json").unlink()
    (out / "_SUCCESS").write_text(json.dumps({"count": 10**10, "shards": 5}))
    _fails(
        out,
        f"{out}/_job.json is missing",
        "ids not checked one by one: without _job.json's shard_size, 10000000000 ids are more than "
        "one bitmap holds (100000000)",
        "_SUCCESS says count 10000000000, the metadata holds 500 rows",
    )


def test_count_beyond_any_job_is_named(out):
    (out / "_job.json").unlink()
    (out / "_SUCCESS").write_text(json.dumps({"count": 10**11, "shards": 5}))
    problems = verify(str(out))
    assert (
        problems[-1]
        == "cannot tell the job's count: 100000000000 is more than any job's (at most 10000000000)"
    )


@pytest.mark.parametrize("key", ["filter", "dedupe", "market", "classes", "image"])
def test_job_sections_of_the_wrong_type_are_reported(out, key):
    _write_job(out, lambda j: j["config"].__setitem__(key, "x"))
    problems = verify(str(out))
    assert any(p.startswith(f"_job.json: config.{key}") for p in problems), problems


def test_invalid_token_suffix_is_reported_not_raised(out):
    _write_job(
        out, lambda j: j["config"].__setitem__("market", {"standard": "opensea", "token_suffix": {"a": 1}})
    )
    _fails(out, "_job.json: config.market.token_suffix: Input should be '.json' or ''")


@pytest.mark.parametrize(
    "rel, text",
    [
        ("_SUCCESS", '{"count": 500, "shards": 5, "x": ' + "9" * 5000 + "}"),
        ("_job.json", "[" * 100_000 + "]" * 100_000),
        ("_SUCCESS", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_hostile_json_is_reported_as_invalid(out, rel, text):
    (out / rel).write_text(text)
    _fails(out, f"{out}/{rel} is not valid JSON")


def test_empty_success_record_is_incomplete(out):
    (out / "_SUCCESS").write_text("{}")
    _fails(out, "_SUCCESS: count is missing", "_SUCCESS: shards is missing")


def test_success_naming_another_job(out):
    (out / "_SUCCESS").write_text(json.dumps({"count": 500, "shards": 5, "job_id": "other"}))
    _fails(out, "_SUCCESS: job_id 'other' is not _job.json's 'job-v'")


def test_part_of_a_shard_beyond_the_plan(out):
    empty = pq.read_table(out / "metadata/part-00000.parquet").slice(0, 0)
    pq.write_table(empty, out / "metadata/part-00007.parquet")
    (out / "_SUCCESS").write_text(json.dumps({"count": 500, "shards": 6}))
    _fails(
        out,
        "metadata/part-00007.parquet: shard 7 is beyond the plan's 5 shards (0..4)",
        "_SUCCESS says 6 shards, the plan has 5",
    )


def test_symlinks_under_images_are_reported(out, tmp_path):
    outside = shutil.copytree(out / "images/00000", tmp_path / "elsewhere")
    for f in sorted((out / "images/00000").iterdir()):
        f.unlink()
        os.symlink(outside / f.name, f)
    problems = _fails(out, "images/00000/0000000000.png: a symbolic link (an output holds its own files)")
    assert "... and 80 more symlink problems" in problems


def test_symlinked_shard_folder_is_reported(out):
    shutil.rmtree(out / "images/00001")
    os.symlink(out / "images/00000", out / "images/00001")
    _fails(out, "images/00001: a symbolic link (an output holds its own files)")


def test_cli_verify_one_line_per_problem_no_traceback(out):
    _write_job(out, lambda j: j["config"].__setitem__("filter", "x"))
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_token_traits_that_disagree_with_the_row(tmp_path):
    """A token's Seed and Model attributes and its description are the row's and the job's: a forged
    trait (an item made to look rare) or description fails verify."""
    from tests.conftest import make_tiny_bundle
    from tests.generation.test_verify import OPENSEA, _write_output

    make_tiny_bundle(str(tmp_path / "bundle"))
    out = _write_output(str(tmp_path / "bundle"), tmp_path, market=OPENSEA)
    assert verify(str(out)) == []

    def edit(i, fn):
        token = json.loads((out / f"tokens/{i}.json").read_text())
        fn(token)
        (out / f"tokens/{i}.json").write_text(json.dumps(token))

    def trait(name, value):
        def fn(token):
            for a in token["attributes"]:
                if a["trait_type"] == name:
                    a["value"] = value

        return fn

    edit(7, trait("Seed", "1"))
    edit(8, trait("Model", "0123456789ab"))
    edit(9, lambda t: t.__setitem__("description", "<script>x</script>"))
    edit(10, lambda t: t.__setitem__("attributes", "rare"))
    problems = verify(str(out))
    seed7 = json.loads((out / "tokens/6.json").read_text())  # a neighbour, to read the row's seed format
    assert seed7["attributes"][0]["trait_type"] == "Seed"
    assert [p for p in problems if p.startswith("id 7:")][0].startswith(
        "id 7: tokens/7.json Seed is '1', expected '"
    )
    model = _job(out)["model_id"][:12]
    assert f"id 8: tokens/8.json Model is '0123456789ab', expected '{model}'" in problems
    assert "id 9: tokens/9.json description is '<script>x</script>', expected 'd'" in problems
    assert "id 10: tokens/10.json attributes is not a list of {trait_type, value}" in problems
    assert len(problems) == 4, problems


def test_webdataset_duplicate_and_link_members(tmp_path):
    """A tar whose member names repeat (a streaming reader sees the first copy, verify used to check the
    last) or that holds links is reported."""
    import io
    import tarfile

    from genart.storage import packing
    from tests.conftest import make_tiny_bundle
    from tests.generation.test_verify import _write_output

    make_tiny_bundle(str(tmp_path / "bundle"))
    out = _write_output(str(tmp_path / "bundle"), tmp_path, "webdataset")
    tar = out / "shards/00001.tar"
    members = list(packing.read_tar(tar.read_bytes()).items())
    forged = [("0000000100.png", members[2][1])] + members  # another item's image first, then the real one
    buf = io.BytesIO(packing.build_tar(forged)[:-1024])  # reopen the archive to append a symlink
    with tarfile.open(fileobj=buf, mode="a", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("0000000199.lnk")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    tar.write_bytes(buf.getvalue())
    _fails(
        out,
        "shards/00001.tar: member 0000000100.png appears more than once",
        "shards/00001.tar: member 0000000199.lnk is not a regular file",
    )


def test_an_edited_job_config_no_longer_matches_its_hash(out):
    """Deleting the last shard and lowering count in _job.json and _SUCCESS verified OK."""
    _write_job(out, lambda j: j["config"].__setitem__("count", 400))
    (out / "_SUCCESS").write_text(json.dumps({"count": 400, "shards": 4}))
    (out / "metadata/part-00004.parquet").unlink()
    shutil.rmtree(out / "images/00004")
    problems = verify(str(out))
    assert len(problems) == 1 and problems[0].startswith("_job.json: config_hash "), problems
    assert re.fullmatch(
        r"_job\.json: config_hash [0-9a-f]{12}\.\.\. is not its config's \([0-9a-f]{12}\.\.\.\): "
        r"the record was edited",
        problems[0],
    ), problems
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1 and "FAIL _job.json: config_hash" in result.output


def test_stray_files_under_metadata(out):
    shutil.copy(out / "metadata/part-00004.parquet", out / "metadata/part-00004.parquet.bak")
    (out / "metadata/notes.txt").write_text("x")
    (out / "metadata/old").mkdir()
    (out / "metadata/.part-00001.parquet.zz.tmp").write_text("x")  # not a genart token
    assert [p for p in _fails(out, "metadata/.part-00001.parquet.zz.tmp: not a file genart writes")] == [
        "metadata/.part-00001.parquet.zz.tmp: not a file genart writes",
        "metadata/notes.txt: not a file genart writes",
        "metadata/old: not a file genart writes",
        "metadata/part-00004.parquet.bak: not a file genart writes",
    ]


def test_a_commits_temp_file_under_metadata_is_not_stray(out):
    (out / "metadata/.part-00001.parquet.0123456789abcdef0123456789abcdef.tmp").write_text("x")
    assert verify(str(out)) == []


def test_a_symlinked_metadata_part_is_reported(out, tmp_path):
    moved = shutil.move(out / "metadata/part-00002.parquet", tmp_path / "part-00002.parquet")
    os.symlink(moved, out / "metadata/part-00002.parquet")
    _fails(out, "metadata/part-00002.parquet: a symbolic link (an output holds its own files)")
