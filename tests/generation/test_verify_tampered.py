"""`genart verify` is not fooled: each tampering exits 1 and names what is wrong. No Ray.

Every case here verified OK before rows were checked against _job.json, the plan and the layout.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from genart.cli import main
from genart.config.generate import GenerateConfig
from genart.filters.draw import attempt_seeds
from genart.generation.verify import verify
from genart.generation.verify_rows import RowCheck
from genart.ids import item_seeds
from genart.images import sha256_hex
from tests.generation.test_verify import _write_output

PART1 = "metadata/part-00001.parquet"


@pytest.fixture(scope="module")
def output_once(tmp_path_factory):
    from tests.conftest import make_tiny_bundle

    root = tmp_path_factory.mktemp("tampered")
    make_tiny_bundle(str(root / "bundle"))
    return _write_output(str(root / "bundle"), root)


@pytest.fixture
def out(output_once, tmp_path):
    """A fresh copy of a complete 500-item output (files layout, 5 shards of 100, 10 classes round-robin)."""
    return shutil.copytree(output_once, tmp_path / "out")


def _set(out, rel: str, column: str, fn):
    """Rewrite one column of a metadata part: fn(list of values) -> list of values."""
    table = pq.read_table(out / rel)
    i = table.schema.get_field_index(column)
    values = fn(table.column(column).to_pylist())
    pq.write_table(
        table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type)), out / rel
    )


def _fails(out, *expected: str) -> list[str]:
    """verify exits 1 and names each expected problem (exact lines)."""
    problems = verify(str(out))
    for line in expected:
        assert line in problems, problems
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1, result.output
    assert f"FAIL {expected[0]}" in result.output
    return problems


def _job(out) -> dict:
    return json.loads((out / "_job.json").read_text())


def test_every_row_pointing_at_image_0_with_the_others_deleted(out):
    zero = out / "images/00000/0000000000.png"
    digest = sha256_hex(zero.read_bytes())
    for k in range(5):
        _set(
            out, f"metadata/part-{k:05d}.parquet", "path", lambda v: ["images/00000/0000000000.png"] * len(v)
        )
        _set(out, f"metadata/part-{k:05d}.parquet", "sha256", lambda v: [digest] * len(v))
    for p in out.glob("images/*/*.png"):
        if p != zero:
            p.unlink()
    problems = _fails(
        out,
        "metadata/part-00000.parquet: id 1: path 'images/00000/0000000000.png' is not the layout's "
        "'images/00000/0000000001.png'",
        "id 1: file images/00000/0000000001.png is missing",
    )
    assert "... and 479 more path problems" in problems


@pytest.mark.parametrize("outside", ["../x.png", "ABS"])
def test_rows_pointing_outside_the_output(out, outside):
    victim = out / "images/00001/0000000105.png"
    target = out.parent / "x.png" if outside == "../x.png" else out.parent / "abs-x.png"
    shutil.copy(victim, target)  # the same bytes outside: following the path would find them intact
    path = outside if outside != "ABS" else str(target)
    victim.unlink()
    _set(out, PART1, "path", lambda v: [path if i == 5 else p for i, p in enumerate(v)])
    _fails(
        out,
        f"{PART1}: id 105: path {path!r} is not the layout's 'images/00001/0000000105.png'",
        "id 105: file images/00001/0000000105.png is missing",
    )


def test_another_seed(out):
    _set(out, PART1, "seed", lambda v: [s + 1 if i == 3 else s for i, s in enumerate(v)])
    plan = int(item_seeds(0, np.array([103]))[0])
    _fails(out, f"{PART1}: id 103: seed {plan + 1} is not the plan's ({plan})")


@pytest.mark.parametrize(
    ("column", "value", "want"),
    [
        ("model_id", "f" * 64, None),
        ("job_id", "job-other", "'job-v'"),
        ("format", "webp", "'png'"),
    ],
)
def test_another_identity(out, column, value, want):
    want = want or repr(_job(out)["model_id"])
    _set(out, PART1, column, lambda v: [value if i == 7 else x for i, x in enumerate(v)])
    _fails(out, f"{PART1}: id 107: {column} {value!r} is not _job.json's {want}")


def test_out_of_range_and_wrong_class_ids(out):
    _set(out, PART1, "class_id", lambda v: [99 if i == 7 else 3 if i == 8 else c for i, c in enumerate(v)])
    _fails(
        out,
        f"{PART1}: id 107: class_id 99 is not the plan's (7)",
        f"{PART1}: id 108: class_id 3 is not the plan's (8)",
    )
    # with the class count recorded in _job.json, the same checks hold without inferring it
    job = _job(out)
    (out / "_job.json").write_text(json.dumps({**job, "num_classes": 10}))
    _fails(out, f"{PART1}: id 107: class_id 99 is not the plan's (7)")


def test_class_ids_on_an_unconditional_job(out):
    job = _job(out)
    (out / "_job.json").write_text(json.dumps({**job, "num_classes": 0}))
    problems = _fails(out, "metadata/part-00000.parquet: id 1: class_id 1 on an unconditional job")
    assert len(problems) > 20


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (("config", "seed"), "_job.json: config.seed is missing"),
        (("config", "shard_size"), "_job.json: config.shard_size is missing"),
        (("config", "image"), "_job.json: config.image.format is missing"),
        (("model_id",), "_job.json: model_id is missing"),
        (("job_id",), "_job.json: job_id is missing"),
        (("config",), "_job.json: config is missing"),
    ],
)
def test_incomplete_job_record(out, drop, message):
    job = _job(out)
    holder = job
    for key in drop[:-1]:
        holder = holder[key]
    del holder[drop[-1]]
    (out / "_job.json").write_text(json.dumps(job))
    _fails(out, message)


def test_invalid_job_record_values(out):
    job = _job(out)
    job["config"]["seed"] = -1
    (out / "_job.json").write_text(json.dumps(job))
    _fails(
        out,
        "_job.json: config.seed: must be an integer in 0..9223372036854775807 (2**63-1: the plan mixes it "
        "into 64-bit item seeds, stored in the int64 `seed` column)",
    )
    (out / "_job.json").write_text("[1, 2]")
    _fails(out, "_job.json is not a JSON object")


def test_stray_files_under_images(out):
    shutil.copy(out / "images/00001/0000000100.png", out / "images/00001/extra.png")
    (out / "images/notes.txt").write_text("x")
    (out / "images/00007").mkdir()
    shutil.copy(out / "images/00001/0000000100.png", out / "images/00007/0000000700.png")
    assert _fails(
        out,
        "images/00001/extra.png: a file no row of metadata/part-00001.parquet names",
        "images/00007: no committed shard owns it",
        "images/notes.txt: no committed shard owns it",
    ) == [
        "images/00001/extra.png: a file no row of metadata/part-00001.parquet names",
        "images/00007: no committed shard owns it",
        "images/notes.txt: no committed shard owns it",
    ]


def test_uncommitted_shard_folder_is_work_in_progress_before_success(out):
    (out / "metadata/part-00004.parquet").unlink()
    (out / "_SUCCESS").unlink()
    problems = verify(str(out))
    assert not any("no committed shard owns it" in p for p in problems)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_truncated_or_corrupt_metadata_part(out, how):
    part = out / "metadata/part-00002.parquet"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2] if how == "truncated" else b"not parquet at all" * 10)
    problems = verify(str(out))
    assert problems[0].startswith(
        "metadata/part-00002.parquet is not a readable Parquet file (truncated or corrupt: "
    ), problems
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert (
        result.exit_code == 1
        and "FAIL metadata/part-00002.parquet is not a readable Parquet" in result.output
    )
    assert "Traceback" not in result.output


def test_image_of_another_size(out):
    victim = out / "images/00003/0000000333.png"
    buf = io.BytesIO()
    Image.new("L", (64, 64)).save(buf, format="PNG")
    victim.write_bytes(buf.getvalue())
    _set(
        out,
        "metadata/part-00003.parquet",
        "sha256",
        lambda v: [sha256_hex(buf.getvalue()) if i == 33 else s for i, s in enumerate(v)],
    )
    _fails(out, "id 333: images/00003/0000000333.png is 64x64, its row says 32x32")


def test_width_height_rows_disagree(out):
    _set(out, PART1, "width", lambda v: [64 if i == 2 else w for i, w in enumerate(v)])
    _fails(out, f"{PART1}: id 102: 64x32, the output's items are 32x32")


def _filtered_cfg(**over) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {"kind": "generate", "model": "m", "output": "o", "count": 8, "shard_size": 8, "seed": 5,
         "dedupe": {"max_distance": 4}, **over}
    )  # fmt: skip


class _Problems(list):
    def add(self, kind, message):
        self.append(message)


def _table(ids, seeds, classes):
    n = len(ids)
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "seed": pa.array(seeds, pa.int64()),
         "class_id": pa.array(classes, pa.int32()), "model_id": ["m"] * n, "job_id": ["j"] * n,
         "format": ["png"] * n, "width": [32] * n, "height": [32] * n}
    )  # fmt: skip


def test_filtered_seeds_are_redraws_derived_from_the_plan():
    cfg = _filtered_cfg()
    ids = np.arange(8)
    plan = item_seeds(5, ids)
    seeds = plan.copy()
    seeds[2] = attempt_seeds(plan[2:3], 3)[0]  # the kept draw was the fourth: a valid redraw
    seeds[5] = 12345  # not derived from id 5's seed
    problems = _Problems()
    RowCheck(cfg, {"model_id": "m", "job_id": "j", "num_classes": 0}).check(
        _table(ids, seeds, [None] * 8), 0, "p", problems
    )
    assert problems == [f"p: id 5: seed 12345 is not the plan's ({plan[5]}) nor a redraw derived from it"]
    # an unfiltered job accepts only the plan's own seed
    problems = _Problems()
    RowCheck(_filtered_cfg(dedupe={}), {"model_id": "m", "job_id": "j", "num_classes": 0}).check(
        _table(ids, seeds, [None] * 8), 0, "p", problems
    )
    assert [p.split(":")[1] for p in problems] == [" id 2", " id 5"]


def test_list_and_weighted_classes_follow_the_plan():
    from genart.generation.plan import class_ids_for

    cfg = _filtered_cfg(classes={"mode": "weighted", "ids": [1, 4], "weights": [1, 3]})
    ids = np.arange(8)
    want = class_ids_for(cfg.classes, 10, 5, ids)
    got = want.copy()
    got[6] = 9
    problems = _Problems()
    RowCheck(cfg, {"model_id": "m", "job_id": "j"}).check(
        _table(ids, item_seeds(5, ids), got), 0, "p", problems
    )
    assert problems == [f"p: id 6: class_id 9 is not the plan's ({want[6]})"]


def test_webdataset_stray_member_and_foreign_path(tiny_bundle, tmp_path):
    from genart.storage import packing

    out = _write_output(tiny_bundle, tmp_path, "webdataset")
    tar = out / "shards/00001.tar"
    members = packing.read_tar(tar.read_bytes())
    members["../evil.png"] = members["0000000100.png"]
    tar.write_bytes(packing.build_tar(list(members.items())))
    _set(out, PART1, "path", lambda v: ["../evil.png" if i == 0 else p for i, p in enumerate(v)])
    _fails(
        out,
        f"{PART1}: id 100: path '../evil.png' is not the layout's '0000000100.png'",
        "shards/00001.tar: member ../evil.png belongs to no row",
    )


def test_parquet_layout_foreign_image_path(tiny_bundle, tmp_path):
    out = _write_output(tiny_bundle, tmp_path, "parquet")
    _set(out, PART1, "path", lambda v: ["/etc/passwd" if i == 4 else p for i, p in enumerate(v)])
    _fails(out, f"{PART1}: id 104: path '/etc/passwd' is not the layout's '0000000104.png'")


def test_forged_seeds_cost_bounded_work_and_raised_max_attempts_still_verify():
    import time

    cfg = _filtered_cfg(count=3000, shard_size=3000, filter={"min_score": 0.5, "max_attempts": 2})
    ids = np.arange(3000)
    plan = item_seeds(5, ids)
    seeds = plan + 1  # every seed forged
    seeds[0] = attempt_seeds(plan[:1], 7)[0]  # a draw past _job.json's max_attempts (raised on resume)
    problems = _Problems()
    t0 = time.perf_counter()
    RowCheck(cfg, {"model_id": "m", "job_id": "j", "num_classes": 0}).check(
        _table(ids, seeds, [None] * 3000), 0, "p", problems
    )
    assert time.perf_counter() - t0 < 60
    assert len(problems) == 2999 and problems[0].startswith("p: id 1: seed ")


def test_unconditional_output_verifies_and_refuses_class_ids(tmp_path):
    from tests.conftest import make_tiny_bundle

    make_tiny_bundle(str(tmp_path / "bundle"), num_classes=0)
    out = _write_output(str(tmp_path / "bundle"), tmp_path)
    assert verify(str(out)) == []
    _set(out, PART1, "class_id", lambda v: [4 if i == 9 else c for i, c in enumerate(v)])
    _fails(out, f"{PART1}: id 109: class_id 4 on an unconditional job")
