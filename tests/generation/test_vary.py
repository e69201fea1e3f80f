"""Variations and crosses without Ray: latent arithmetic, child numbering, class blends, and every bad input
(config, picks file, parents' output) with its exact message."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from genart.bundle import load_bundle
from genart.config.generate import GenerateConfig, resolve_class_names
from genart.config.loader import validate
from genart.errors import ConfigError
from genart.generation.job import prepare_output
from genart.generation.parents import read_picks, resolve_variations
from genart.generation.plan import Plan, children_of
from genart.generation.vary import VARY_SALT, child_count, child_seeds
from genart.ids import derived_seeds, item_seeds
from genart.models.blend import offset, slerp
from genart.models.sampling import forward_per_item, latents
from genart.storage.output import Output
from tests.conftest import make_tiny_bundle, run_without_ray

BASE = {"kind": "generate", "model": "m", "output": "o"}


def test_slerp_endpoints_are_the_parents_and_the_midpoint_halves_the_angle():
    a, b = latents([11, 12], 64)
    assert torch.equal(slerp(a, b, 0.0), a.double()) and torch.equal(slerp(a, b, 1.0), b.double())
    mid = slerp(a, b, 0.5)
    cos = lambda u, v: float(torch.dot(u, v) / (u.norm() * v.norm()))  # noqa: E731
    whole = math.acos(cos(a.double(), b.double()))
    assert math.acos(cos(a.double(), mid)) == pytest.approx(whole / 2, rel=1e-9)
    assert math.acos(cos(mid, b.double())) == pytest.approx(whole / 2, rel=1e-9)
    assert float(mid.norm()) == pytest.approx((float(a.double().norm()) + float(b.double().norm())) / 2)
    assert torch.allclose(slerp(a, a, 0.3), a.double(), rtol=0, atol=1e-12)  # parallel: the linear fallback


def test_offset_has_the_radius_and_depends_only_on_the_seed():
    for radius in (0.0, 0.3, 2.0):
        d = offset(42, 64, radius)
        assert d.dtype == torch.float64 and float(d.norm()) == pytest.approx(radius * 8, abs=1e-12)
    assert torch.equal(offset(42, 64, 0.3), offset(42, 64, 0.3))
    assert not torch.equal(offset(42, 64, 0.3), offset(43, 64, 0.3))


def _cfg(parents, **v) -> GenerateConfig:
    refs = [
        {"id": i, "seed": 100 + i, "class_id": c, "latent": latents([100 + i], 16)[0].tolist()}
        for i, c in parents
    ]
    variations = {"of": "p", "picks": "p.json", "per_item": 2, "radius": 0.3, "parents": refs, **v}
    n = child_count(
        len(refs), variations["per_item"], variations.get("cross", False), variations.get("cross_per_pair", 1)
    )
    return GenerateConfig.model_validate({**BASE, "count": n, "seed": 5, "variations": variations})


def test_children_are_numbered_parent_by_parent_then_pair_by_pair():
    cfg = _cfg([(3, 1), (7, 2), (8, 2)], cross=True, cross_per_pair=2)
    ch = children_of(cfg, 10)
    assert ch.count == cfg.count == 3 * 2 + 3 * 2
    ids = np.arange(ch.count)
    a, b, t = ch.parents_of(ids)
    assert a.tolist() == [0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1]
    assert b.tolist() == [-1] * 6 + [1, 1, 2, 2, 2, 2]
    assert t.tolist() == [0.0] * 6 + [1 / 3, 2 / 3] * 3
    assert [list(p) for p in ch.parent_ids(ids)] == [
        [3],
        [3],
        [7],
        [7],
        [8],
        [8],
        [3, 7],
        [3, 7],
        [3, 8],
        [3, 8],
        [7, 8],
        [7, 8],
    ]
    # the nearer parent's class: a's at t = 1/3, b's at t = 2/3
    assert ch.class_ids(ids).tolist() == [1, 1, 2, 2, 2, 2, 1, 2, 1, 2, 2, 2]
    rows = ch.class_rows(ids)
    assert rows.dtype == torch.float32 and rows.shape == (12, 10)
    assert rows[0].tolist() == [0, 1] + [0] * 8
    assert rows[6, 1] == pytest.approx(2 / 3) and rows[6, 2] == pytest.approx(1 / 3)
    assert torch.equal(rows[10], rows[0].roll(1))  # parents 7 and 8 share class 2: a plain one-hot
    seeds = derived_seeds(item_seeds(5, ids), VARY_SALT)
    assert np.array_equal(ch.seeds(ids), seeds) and np.array_equal(child_seeds(5, ids), seeds)


def test_children_latents_lie_at_the_radius_of_their_parent_and_do_not_depend_on_the_batch():
    cfg = _cfg([(3, 1), (7, 2)], cross=True)
    ch = children_of(cfg, 10)
    ids = np.arange(ch.count)
    z = ch.latents(ids, 16)
    parents = torch.tensor([p.latent for p in cfg.variations.parents])
    for i in range(4):
        dist = float((z[i].double() - parents[i // 2].double()).norm()) / math.sqrt(16)
        assert dist == pytest.approx(0.3, abs=1e-6)
    mid = slerp(parents[0], parents[1], 0.5) + offset(int(ch.seeds(ids)[4]), 16, 0.3)
    assert torch.equal(z[4], mid.float())
    assert torch.equal(ch.latents(ids[3:], 16), z[3:])  # any slice: the same numbers
    truncated = children_of(cfg.model_copy(update={"truncation": 0.5}), 10).latents(ids, 16)
    assert float(truncated.abs().max()) <= 0.5


@pytest.mark.parametrize("arch", ["dcgan", "vae"])
def test_a_one_hot_class_row_makes_the_same_pixels_as_the_class_id(tmp_path, arch):
    make_tiny_bundle(str(tmp_path / "b"), arch=arch)
    g = load_bundle(str(tmp_path / "b")).generator
    z = latents([1, 2, 3], g.latent_dim)
    ids = torch.tensor([0, 4, 9])
    with torch.inference_mode():
        hard = forward_per_item(g, z, ids)
        soft = forward_per_item(g, z, torch.nn.functional.one_hot(ids, 10).float())
        mixed = forward_per_item(g, z, torch.full((3, 10), 0.1))
    assert torch.equal(hard, soft) and not torch.equal(hard, mixed)


def _message(data: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        validate(data, "x.yaml")
    return str(exc.value).split("\n  ", 1)[1]


def test_bad_variations_and_blend_configs_are_refused_by_key():
    v = {"of": "out", "picks": "picks.json"}
    for radius in (-0.1, 1e300):  # 1e300 overflowed the latents into blank images (a reviewer's find)
        assert _message({**BASE, "variations": {**v, "radius": radius}}) == (
            "variations.radius: must be 0..10: the distance of each child's latent from its parent's, per latent "
            f"coordinate (0 = the parent itself, 0.3 = a close variation, 1 = far) (got {radius})"
        )
    assert _message({**BASE, "variations": {**v, "per_item": 0}}) == (
        "variations.per_item: must be 1..10000: the number of children made around each kept piece (got 0)"
    )
    assert _message({**BASE, "classes": {"blend": {"Flags": 0.7, "Symbols": 0.2}}}) == (
        "classes: classes.blend weights must be >= 0 and sum to 1; they sum to 0.9 (e.g. {Flags: 0.7, Symbols: 0.3})"
    )
    assert _message({**BASE, "classes": {"mode": "list", "ids": [1], "blend": {"1": 1}}}) == (
        "classes: classes.blend gives every item the same mix of classes: leave classes.mode and classes.ids "
        "unset with it"
    )
    assert _message({**BASE, "classes": {"mode": "list", "ids": [1]}, "variations": v}) == (
        "<top>: variations.keep_class is true (children keep their parents' classes), so the job's classes "
        "block would be ignored: remove it, or set variations.keep_class: false to use it"
    )
    assert _message({**BASE, "filter": {"min_score": 0.5}, "variations": v}) == (
        "<top>: variations cannot be combined with filter.min_score or dedupe.max_distance yet (redraws would "
        "not keep the children's latents); set them null"
    )


def test_blend_names_resolve_and_unknown_or_unconditional_are_refused():
    cfg = GenerateConfig.model_validate({**BASE, "classes": {"blend": {"Flags": 0.7, "Symbols": 0.3}}})
    names = ["Animals", "Flags", "Symbols"]
    assert resolve_class_names(cfg, names, 3).classes.blend == {1: 0.7, 2: 0.3}
    plan = Plan.from_config(resolve_class_names(cfg, names, 3), 3)
    assert plan.shard(0).class_ids[:3].tolist() == [1, 1, 1]  # the heaviest class is recorded
    with pytest.raises(ConfigError) as exc:
        resolve_class_names(cfg, ["Animals", "Flags"], 2)
    assert (
        str(exc.value)
        == "classes.blend: 'Symbols' is not a class of this model; its classes are 'Animals', 'Flags'"
    )
    with pytest.raises(ConfigError) as exc:
        resolve_class_names(cfg, None, 0)
    assert str(exc.value) == (
        "classes.blend: this model is unconditional (model.json num_classes 0), it has no classes to blend; "
        "remove classes.blend or use a class-conditional model"
    )
    ids = GenerateConfig.model_validate({**BASE, "classes": {"blend": {3: 0.5, 12: 0.5}}})
    with pytest.raises(
        ConfigError, match=re.escape("classes.blend: [12] are not classes of this model (it has 10: 0..9)")
    ):
        Plan.from_config(ids, 10)


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """(root, bundle meta) with a complete 12-item parent output at root/parent (job 'job-parent')."""
    root = tmp_path_factory.mktemp("vary")
    meta = make_tiny_bundle(str(root / "bundle"))
    (root / "parent").mkdir()
    cfg = GenerateConfig.model_validate(
        {"kind": "generate", "model": str(root / "bundle"), "output": str(root / "parent"), "count": 12,
         "shard_size": 5, "seed": 3}
    )  # fmt: skip
    job, _ = prepare_output(Output.open(cfg.output), cfg, meta, False, "job-parent")
    run_without_ray(cfg, meta, job)
    return root, meta


def _variations(root, picks: dict | None, **v) -> GenerateConfig:
    if picks is not None:
        (root / "picks.json").write_text(json.dumps(picks))
    block = {"of": str(root / "parent"), "picks": str(root / "picks.json"), "per_item": 2, **v}
    return GenerateConfig.model_validate(
        {
            "kind": "generate",
            "model": str(root / "bundle"),
            "output": str(root / "child"),
            "variations": block,
        }
    )


def _refused(root, meta, picks, **v) -> str:
    with pytest.raises(ConfigError) as exc:
        resolve_variations(_variations(root, picks, **v), meta)
    return str(exc.value).replace(str(root), "ROOT")


def test_picks_and_parents_bad_input_is_refused_with_a_clear_message(parent):
    root, meta = parent
    picks = {"output": str(root / "parent"), "job_id": "job-parent", "keep": [1, 4], "reject": []}
    assert _refused(root, meta, {**picks, "keep": [1, 12, 40]}) == (
        "variations.picks: keep names 2 id(s) that ROOT/parent does not hold: 12, 40 (its items are 0..11); "
        "export the picks from that output again"
    )
    (root / "picks.json").unlink()
    assert _refused(root, meta, None) == (
        "variations.picks: picks file ROOT/picks.json does not exist; export it from `genart gallery`"
    )
    assert _refused(root, meta, picks, of=str(root / "bundle")) == (
        "variations.of: ROOT/bundle is not a genart output (it has no _job.json); give the folder "
        "`genart generate` wrote the kept pieces to"
    )
    assert _refused(root, meta, {**picks, "job_id": "job-old"}) == (
        "variations.picks: ROOT/picks.json was made for job job-old, but ROOT/parent holds job job-parent "
        "(it was generated again since); curate ROOT/parent again and export new picks"
    )
    assert _refused(root, meta, {**picks, "keep": [4]}, cross=True) == (
        "variations.cross needs at least 2 kept pieces to cross; ROOT/picks.json keeps 1. Keep more, or set "
        "variations.cross: false"
    )
    assert _refused(root, meta, {**picks, "keep": []}) == (
        "variations.picks: ROOT/picks.json keeps nothing; keep at least one piece"
    )
    assert _refused(root, meta, {"keep": [1]}) == "variations.picks: ROOT/picks.json: output: Field required"
    assert _refused(root, meta, {**picks, "keep": [1, 1]}) == (
        "variations.picks: ROOT/picks.json: keep: id 1 is listed twice"
    )
    assert _refused(root, {**meta, "model_id": "f" * 64}, picks) == (
        f"variations.of: ROOT/parent was made by model {meta['model_id'][:12]}..., this job's model is "
        "ffffffffffff...; variations start from the parents' latents, so use the same model"
    )
    counted = _variations(root, picks).model_copy(update={"count": 99})
    counted.model_fields_set.add("count")
    with pytest.raises(
        ConfigError, match=re.escape("count: this variations job makes 4 items (2 kept x per_item 2), not 99")
    ):
        resolve_variations(counted, meta)


def test_picks_are_read_by_the_market_reader_and_the_parents_are_recorded_with_their_latents(parent):
    root, meta = parent
    (root / "picks.json").write_text(
        json.dumps({"output": "o", "job_id": "job-parent", "keep": [4, 1], "reject": []})
    )
    assert read_picks(str(root / "picks.json")).keep == [1, 4]
    cfg = resolve_variations(_variations(root, None, cross=True), meta)
    assert cfg.count == 2 * 2 + 1 and cfg.variations.parent_job == "job-parent"
    import pyarrow.parquet as pq

    rows = pq.read_table(root / "parent" / "metadata").sort_by("id").to_pylist()
    for p in cfg.variations.parents:
        assert (p.seed, p.class_id) == (rows[p.id]["seed"], rows[p.id]["class_id"])
        assert p.latent == latents([p.seed], meta["latent_dim"])[0].tolist()


def test_children_of_children_start_from_their_parents_recorded_latents(parent):
    root, meta = parent
    (root / "picks.json").write_text(
        json.dumps({"output": "o", "job_id": "job-parent", "keep": [1, 4], "reject": []})
    )
    cfg = resolve_variations(_variations(root, None), meta)
    cfg = cfg.model_copy(update={"output": str(root / "child")})
    (root / "child").mkdir()
    job, _ = prepare_output(Output.open(cfg.output), cfg, meta, False, "job-child")
    run_without_ray(cfg, meta, job)
    (root / "picks2.json").write_text(
        json.dumps({"output": "o", "job_id": "job-child", "keep": [0, 3], "reject": []})
    )
    block = {"of": str(root / "child"), "picks": str(root / "picks2.json"), "per_item": 1, "radius": 0.0}
    grand = GenerateConfig.model_validate({**BASE, "model": str(root / "bundle"), "variations": block})
    grand = resolve_variations(grand, meta)
    z = children_of(cfg, 10).latents(np.array([0, 3]), meta["latent_dim"])
    assert [p.latent for p in grand.variations.parents] == z.tolist()
    assert [p.class_id for p in grand.variations.parents] == [1, 4]  # their parents' classes, kept
    # radius 0: a grandchild's latent is its parent's
    assert torch.equal(children_of(grand, 10).latents(np.array([0, 1]), meta["latent_dim"]), z)


def test_children_bytes_do_not_depend_on_shards_batches_or_threads(tmp_path):
    """A trained-like bundle (BatchNorm gain 4, where rounding flips show): 4 kept, 8 variations each and the
    6 crosses (blended classes) made in one shard of 38, shards of 5 in batches of 1 on 2 threads, and shards
    of 10 in batches of 3: the same seeds, classes, parents and bytes."""
    import pyarrow.parquet as pq

    from genart.generation.replica import GeneratorReplica
    from tests.generation.test_exact import make_bundle

    bundle = make_bundle(str(tmp_path / "bundle"), "dcgan")
    meta = load_bundle(bundle).meta
    base = {"kind": "generate", "model": bundle}
    pcfg = GenerateConfig.model_validate({**base, "output": str(tmp_path / "parent"), "count": 20, "seed": 1})
    (tmp_path / "parent").mkdir()
    job, _ = prepare_output(Output.open(pcfg.output), pcfg, meta, False, "job-p")
    run_without_ray(pcfg, meta, job)
    (tmp_path / "picks.json").write_text(
        json.dumps({"output": "o", "job_id": "job-p", "keep": [3, 8, 13, 19], "reject": []})
    )
    block = {"of": pcfg.output, "picks": str(tmp_path / "picks.json"), "per_item": 8, "cross": True}
    n = torch.get_num_threads()
    tables = []
    try:
        for k, (shard, batch, cpus) in enumerate(((38, 38, 1), (5, 1, 2), (10, 3, 1))):
            out = tmp_path / f"c{k}"
            cfg = GenerateConfig.model_validate(
                {**base, "output": str(out), "variations": block, "shard_size": shard, "batch_size": batch,
                 "cpus_per_replica": cpus}
            )  # fmt: skip
            cfg = resolve_variations(cfg, meta)
            replica = GeneratorReplica(cfg, "job-c", meta["model_id"])
            plan = Plan.from_config(cfg, 10)
            for s in range(plan.num_shards):
                replica.run_shard(plan.shard(s))
            cols = ["id", "seed", "class_id", "sha256", "parent_job", "parent_ids"]
            tables.append(pq.read_table(out / "metadata", columns=cols).sort_by("id").to_pylist())
    finally:
        torch.set_num_threads(n)
    assert len(tables[0]) == 38 and tables[0] == tables[1] == tables[2]
    assert len({r["sha256"] for r in tables[0]}) == 38


def test_genart_plan_counts_a_variations_job_by_its_picks(parent):
    from genart.generation.estimate import plan_costs

    root, meta = parent
    picks = {"output": "o", "job_id": "job-parent", "keep": [1, 4, 9], "reject": []}
    assert plan_costs(_variations(root, picks, cross=True))[0].count == 3 * 2 + 3


def test_genart_generate_refuses_a_missing_picks_file_with_exit_2_before_writing(parent, tmp_path):
    import yaml
    from click.testing import CliRunner

    from genart.cli import main

    root, _ = parent
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "configs/generate/variations.yaml"
    data = yaml.safe_load(shipped.read_text())
    data.update(model=str(root / "bundle"), output=str(tmp_path / "out"))
    data["variations"].update(of=str(root / "parent"), picks=str(tmp_path / "nope.json"))
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "v.yaml")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"variations.picks: picks file {tmp_path}/nope.json does not exist" in result.output
    assert not (tmp_path / "out").exists()


def test_verify_names_child_rows_that_are_not_their_ids(parent, tmp_path):
    """A child output whose rows were rewritten (seed, class, parents) and whose record's count was edited:
    each is named (the record's hash is re-made, so only the child checks can tell)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genart.config.identity import record_exclude
    from genart.config.loader import config_hash
    from genart.generation.job import record_config
    from genart.generation.verify import verify

    root, meta = parent
    (root / "picks.json").write_text(
        json.dumps({"output": "o", "job_id": "job-parent", "keep": [1, 4], "reject": []})
    )
    cfg = resolve_variations(_variations(root, None), meta).model_copy(update={"output": str(tmp_path / "c")})
    (tmp_path / "c").mkdir()
    job, _ = prepare_output(Output.open(cfg.output), cfg, meta, False, "job-c")
    run_without_ray(cfg, meta, job)
    (tmp_path / "c" / "_SUCCESS").write_text(json.dumps({"count": 4, "shards": 1, "job_id": "job-c"}))
    assert verify(str(tmp_path / "c")) == []
    part = tmp_path / "c" / "metadata" / "part-00000.parquet"
    table = pq.read_table(part)
    seeds = table.column("seed").to_pylist()
    table = table.set_column(1, "seed", pa.array([seeds[0] + 1, *seeds[1:]], pa.int64()))
    table = table.set_column(2, "class_id", pa.array([1, 1, 4, 7], pa.int32()))
    i = table.schema.get_field_index("parent_ids")
    table = table.set_column(i, "parent_ids", pa.array([[1], [1], [4], [1]], pa.list_(pa.int64())))
    pq.write_table(table, part)
    problems = verify(str(tmp_path / "c"))
    assert problems == [
        f"metadata/part-00000.parquet: id 0: seed {seeds[0] + 1} is not the child's seed",
        "metadata/part-00000.parquet: id 3: class_id 7 is not the child's (4)",
        "metadata/part-00000.parquet: id 3: parent_ids [1] are not its parents [4]",
    ]
    record = json.loads((tmp_path / "c" / "_job.json").read_text())
    record["config"]["count"] = 3
    edited = record_config(record)
    record["config_hash"] = config_hash(edited, exclude=record_exclude(edited, for_hash=True))
    (tmp_path / "c" / "_job.json").write_text(json.dumps(record))
    assert "_job.json: count 3 is not the 4 children its variations make (2 parents)" in verify(
        str(tmp_path / "c")
    )
