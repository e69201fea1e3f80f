"""generate -> picks -> variations (and crosses) on a real 2-CPU local Ray: row counts, parent columns, the
children's latents against their parents', pixels regenerated from those latents, verify, bit-exact re-runs,
and a classes.blend job."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from genart.bundle import load_bundle
from genart.generation.job import record_config
from genart.generation.plan import children_of
from genart.generation.runner import generate
from genart.generation.verify import verify
from genart.images import encode, sha256_hex
from genart.models.blend import class_weights, offset, slerp
from genart.models.sampling import forward_per_item, latents, to_uint8
from tests.conftest import make_tiny_bundle

PER_ITEM, RADIUS, KEEP = 4, 0.3, [2, 7, 11]


def rows(out) -> list[dict]:
    return pq.read_table(out / "metadata").sort_by("id").to_pylist()


def pixels(generator, z: torch.Tensor, y) -> np.ndarray:
    with torch.inference_mode():
        return to_uint8(forward_per_item(generator, z, y))


@pytest.fixture(scope="module")
def family(ray_local, tmp_path_factory):
    """(root, parent rows, child cfg) after a 14-item parent job, its picks, and a variations + cross job."""
    root = tmp_path_factory.mktemp("family")
    make_tiny_bundle(str(root / "bundle"))
    base = {
        "kind": "generate",
        "model": str(root / "bundle"),
        "replicas": 2,
        "shard_size": 5,
        "batch_size": 3,
    }
    from genart.config.generate import GenerateConfig

    parent = generate(
        GenerateConfig.model_validate({**base, "output": str(root / "parent"), "count": 14, "seed": 9}),
        progress=False,
    )
    picks = {"output": str(root / "parent"), "job_id": parent.job_id, "keep": KEEP, "reject": [0, 1]}
    (root / "picks.json").write_text(json.dumps(picks))
    variations = {"of": str(root / "parent"), "picks": str(root / "picks.json"), "per_item": PER_ITEM,
                  "radius": RADIUS, "cross": True}  # fmt: skip
    child_cfg = GenerateConfig.model_validate(
        {**base, "output": str(root / "child"), "seed": 4, "variations": variations}
    )
    generate(child_cfg, progress=False)
    return root, rows(root / "parent"), child_cfg


def _stamped(out, image, row) -> str:
    """sha256 of `image` encoded as PNG and stamped with the XMP disclosure output `out`'s job gives `row`."""
    from genart.market.xmp import Provenance

    job = json.loads((out / "_job.json").read_text())
    return sha256_hex(
        Provenance(job["model_id"], job["job_id"]).stamp(encode(image), "png", row["id"], row["seed"])
    )


def _pixels_sha(out, row) -> str:
    import numpy as np
    from PIL import Image

    return sha256_hex(np.asarray(Image.open(out / row["path"])).tobytes())


def test_children_rows_name_their_parents_and_own_seeds(family):
    root, parent_rows, _ = family
    got = rows(root / "child")
    job = json.loads((root / "child" / "_job.json").read_text())
    assert len(got) == 3 * PER_ITEM + 3 == job["config"]["count"] == 15
    parent_job = json.loads((root / "parent" / "_job.json").read_text())["job_id"]
    assert {r["parent_job"] for r in got} == {parent_job}
    assert [r["parent_ids"] for r in got] == [[2]] * 4 + [[7]] * 4 + [[11]] * 4 + [[2, 7], [2, 11], [7, 11]]
    # classes: each child keeps its parent's; a cross at t = 0.5 records the first parent's
    cls = {r["id"]: r["class_id"] for r in parent_rows}
    assert [r["class_id"] for r in got] == [cls[2]] * 4 + [cls[7]] * 4 + [cls[11]] * 4 + [
        cls[2],
        cls[2],
        cls[7],
    ]
    assert len({r["seed"] for r in got}) == 15
    assert [p["id"] for p in job["config"]["variations"]["parents"]] == KEEP


def test_children_lie_at_the_radius_and_their_pixels_come_from_those_latents(family):
    root, parent_rows, _ = family
    bundle = load_bundle(str(root / "bundle"))
    g, d = bundle.generator, bundle.meta["latent_dim"]
    got = rows(root / "child")
    z_parent = {i: latents([parent_rows[i]["seed"]], d)[0] for i in KEEP}
    cfg = record_config(json.loads((root / "child" / "_job.json").read_text()))
    z = children_of(cfg, 10).latents(np.arange(15), d)
    for r in got[:12]:  # children of one parent: at distance radius * sqrt(d) from it
        dist = float((z[r["id"]].double() - z_parent[r["parent_ids"][0]].double()).norm()) / math.sqrt(d)
        assert dist == pytest.approx(RADIUS, abs=1e-6)
    for r in got[12:]:  # crosses: the slerp midpoint of their parents, moved by their own offset
        a, b = (z_parent[i] for i in r["parent_ids"])
        want = (slerp(a, b, 0.5) + offset(r["seed"], d, RADIUS)).float()
        assert torch.equal(z[r["id"]], want)
    # the stored pixels are those latents through the generator (the crosses with their classes blended)
    y = torch.zeros(15, 10)
    for r in got:
        for i in r["parent_ids"]:
            y[r["id"], parent_rows[i]["class_id"]] += 1 / len(r["parent_ids"])
    images = pixels(g, z, y)
    for r in got:
        data = (root / "child" / r["path"]).read_bytes()
        assert sha256_hex(data) == r["sha256"] == _stamped(root / "child", images[r["id"]], r)
    # a parent re-made from its row is the parent's stored file
    p = parent_rows[KEEP[0]]
    hard = pixels(g, z_parent[KEEP[0]][None], torch.tensor([p["class_id"]]))
    assert _stamped(root / "parent", hard[0], p) == p["sha256"]


def test_verify_passes_and_reruns_give_the_same_bytes(family):
    root, _, child_cfg = family
    assert verify(str(root / "child")) == []
    again = child_cfg.model_copy(
        update={"output": str(root / "again"), "replicas": 1, "batch_size": 7, "shard_size": 4}
    )
    generate(again, progress=False)
    # another output is another job (its job_id is in every file's XMP): the same pixels, ids and seeds
    again_px = [_pixels_sha(root / "again", r) for r in rows(root / "again")]
    assert again_px == [_pixels_sha(root / "child", r) for r in rows(root / "child")]
    assert [r["seed"] for r in rows(root / "again")] == [r["seed"] for r in rows(root / "child")]
    assert verify(str(root / "again")) == []


def test_verify_names_a_child_whose_parent_is_gone(family):
    root, _, _ = family
    shutil.copytree(root / "parent", root / "parent-copy")
    shutil.copytree(root / "child", root / "orphan")
    job = json.loads((root / "orphan" / "_job.json").read_text())
    # the child's record names its parents' output; the parents there lose shard 2 (ids 10..13: parent 11)
    (root / "parent" / "metadata" / "part-00002.parquet").unlink()
    try:
        problems = verify(str(root / "orphan"))
        assert problems == [
            f"variations.of {job['config']['variations']['of']}: parent id 11 is not in that output"
        ]
        shutil.rmtree(root / "parent")  # unreadable: the child stands on its own record
        assert verify(str(root / "orphan")) == []
    finally:
        shutil.rmtree(root / "parent", ignore_errors=True)
        shutil.copytree(root / "parent-copy", root / "parent")


def test_a_blend_job_records_the_heaviest_class_and_makes_blended_pixels(ray_local, tmp_path):
    from genart.config.generate import GenerateConfig

    make_tiny_bundle(str(tmp_path / "bundle"), class_names=[f"c{i}" for i in range(10)])
    cfg = GenerateConfig.model_validate(
        {"kind": "generate", "model": str(tmp_path / "bundle"), "output": str(tmp_path / "out"), "count": 6,
         "seed": 2, "replicas": 1, "shard_size": 4, "classes": {"blend": {"c3": 0.3, "c5": 0.7}}}
    )  # fmt: skip
    generate(cfg, progress=False)
    got = rows(tmp_path / "out")
    assert [r["class_id"] for r in got] == [5] * 6
    job = json.loads((tmp_path / "out" / "_job.json").read_text())
    assert job["config"]["classes"]["blend"] == {"3": 0.3, "5": 0.7}
    g = load_bundle(str(tmp_path / "bundle")).generator
    seeds = [r["seed"] for r in got]
    blended = pixels(g, latents(seeds, g.latent_dim), class_weights({3: 0.3, 5: 0.7}, 10).expand(6, 10))
    plain = pixels(g, latents(seeds, g.latent_dim), torch.full((6,), 5))
    out = tmp_path / "out"
    assert [_stamped(out, im, r) for im, r in zip(blended, got)] == [r["sha256"] for r in got]
    assert [_stamped(out, im, r) for im, r in zip(plain, got)] != [r["sha256"] for r in got]
    assert verify(str(tmp_path / "out")) == []
