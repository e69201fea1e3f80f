"""Class names flow from a bundle's model.json everywhere: generate's `classes.ids`, tokens, `preview --class`,
the gallery and synthesize's ClassLabel, with names holding spaces and `&` (no Ray)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from genart.bundle import read_meta
from genart.cli import main
from genart.config.generate import GenerateConfig, resolve_class_names
from genart.errors import ConfigError
from genart.generation.plan import Plan
from genart.storage import hf
from genart.synthesis import write
from tests.conftest import make_tiny_bundle
from tests.market.conftest import market_cfg, run_without_ray

NAMES = ["Food & Drink", "Flags"]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def cfg_with(ids, mode="list", weights=()):
    classes = {"mode": mode, "ids": ids, **({"weights": list(weights)} if weights else {})}
    return GenerateConfig.model_validate(
        {"kind": "generate", "model": "b", "output": "o", "count": 10, "classes": classes}
    )


def test_names_resolve_to_ids_and_id_configs_are_untouched():
    by_id = cfg_with([1, 0])
    assert resolve_class_names(by_id, NAMES) is by_id  # the same object: same _job.json, same identity
    assert by_id.model_dump()["classes"] == {"mode": "list", "ids": [1, 0], "weights": []}
    got = resolve_class_names(cfg_with(["Flags", 0, "Food & Drink"]), NAMES)
    assert got.classes.ids == [1, 0, 0] and got.model_dump()["classes"]["ids"] == [1, 0, 0]
    weighted = resolve_class_names(cfg_with(["Flags", "Food & Drink"], "weighted", [3, 1]), NAMES)
    assert (weighted.classes.ids, weighted.classes.weights) == ([1, 0], [3.0, 1.0])
    assert resolve_class_names(cfg_with(["1"]), NAMES).classes.ids == [1]  # a quoted number stays an id
    digits = [str(i) for i in range(10)]
    assert resolve_class_names(cfg_with(["7", 3]), digits).classes.ids == [7, 3]


def test_an_unknown_name_names_the_key_and_lists_the_classes():
    with pytest.raises(ConfigError) as err:
        resolve_class_names(cfg_with(["Flag"]), NAMES)
    assert (
        str(err.value)
        == "classes.ids: 'Flag' is not a class of this model; its classes are 'Food & Drink', 'Flags'"
    )
    with pytest.raises(
        ConfigError, match=r"^classes.ids: 'Flags' names a class, but this model has no class names$"
    ):
        resolve_class_names(cfg_with(["Flags"]), None)
    many = [f"c{i}" for i in range(30)]
    with pytest.raises(ConfigError, match=r"'c19', \.\.\. \(30 in all\)$"):
        resolve_class_names(cfg_with(["x"]), many)
    with pytest.raises(ConfigError, match=r"classes.ids: \[5, 'Flags'\] are not classes of this model"):
        Plan.from_config(cfg_with([5, "Flags"]), 2)  # a name never resolved is not taken for an id


def test_a_config_file_with_names_validates(tmp_path):
    from genart.config import load_config

    path = tmp_path / "g.yaml"
    path.write_text("kind: generate\nmodel: b\noutput: o\nclasses:\n  mode: list\n  ids: [Food & Drink, 1]\n")
    assert load_config(str(path), (), expect_kind="generate").classes.ids == ["Food & Drink", 1]
    got = load_config(str(path), ("classes.ids=[Flags]",), expect_kind="generate")
    assert got.classes.ids == ["Flags"]
    path.write_text("kind: generate\nmodel: b\noutput: o\nclasses:\n  mode: list\n  ids: ['']\n")
    res = run("generate", str(path))
    assert res.exit_code == 2 and "classes.ids" in res.output


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """(bundle URI, output Path) of a 60-item opensea collection from a bundle whose classes are NAMES,
    asked for by name: `classes: {mode: list, ids: [Flags, Food & Drink, Flags]}`."""
    root = tmp_path_factory.mktemp("named")
    bundle = str(root / "bundle")
    meta = make_tiny_bundle(bundle, num_classes=2, class_names=NAMES)
    cfg = market_cfg(
        bundle, str(root / "out"), classes={"mode": "list", "ids": ["Flags", "Food & Drink", "Flags"]}
    )
    cfg = resolve_class_names(cfg, hf.class_names_of(meta))
    run_without_ray(cfg, meta, {"job_id": "job-1", "model_id": meta["model_id"]})
    return bundle, root / "out"


def test_the_bundle_records_the_names(named):
    bundle, _ = named
    assert read_meta(bundle)["class_names"] == NAMES


def test_tokens_carry_the_class_name(named):
    _, out = named
    classes = []
    for i in range(6):
        token = json.loads((out / "tokens" / f"{i}.json").read_text())
        classes.append(next(a["value"] for a in token["attributes"] if a["trait_type"] == "Class"))
    assert classes == ["Flags", "Food & Drink", "Flags"] * 2
    rows = pq.read_table(out / "metadata").sort_by("id")
    assert rows.column("class_id").to_pylist()[:6] == [1, 0, 1, 1, 0, 1]


def test_preview_class_by_name(named, tmp_path):
    bundle, out = named
    res = run(
        "preview", str(out), "--model", bundle, "--class", "Food & Drink", "--out", str(tmp_path / "f.png")
    )
    assert res.exit_code == 0, res.output
    assert res.output == f"{tmp_path / 'f.png'} (20 items)\n"  # ids 1, 4, 7, ...: one in three of 60
    res = run("preview", str(out), "--model", bundle, "--class", "Flags", "--out", str(tmp_path / "g.png"))
    assert res.output.endswith("(40 items)\n")
    res = run("preview", str(out), "--model", bundle, "--class", "1", "--out", str(tmp_path / "h.png"))
    assert res.output.endswith("(40 items)\n")  # an id still works
    res = run("preview", str(out), "--model", bundle, "--class", "Drinks")
    assert (res.exit_code, res.output) == (
        2,
        f"error: --class: 'Drinks' is not a class of {out}; its classes are 'Food & Drink', 'Flags'\n",
    )
    res = run("preview", str(out), "--class", "Flags")  # names only come from a bundle the user names
    assert res.exit_code == 2
    assert res.output == (
        f"error: --class 'Flags': {out} records no class names; pass a class id, or --model BUNDLE to take "
        "the names from that bundle\n"
    )


def test_gallery_shows_the_names(named):
    bundle, out = named
    res = run("gallery", str(out), "--model", bundle, "--limit", "6")
    assert res.exit_code == 0, res.output
    page = (out / "index.html").read_text()
    assert "Food &amp; Drink" in page and "Flags" in page


def test_synthesize_classlabel_holds_the_names(named, tmp_path):
    bundle, _ = named
    schema = write.dataset_schema(read_meta(bundle)["class_names"], with_score=False)
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"names": NAMES, "_type": "ClassLabel"}


def test_walk_class_by_name(named, tmp_path):
    bundle, _ = named
    args = ("walk", bundle, "--seeds", "1", "2", "--frames", "2", "--scale", "1")
    res = run(*args, "--class", "Flags", "--out", str(tmp_path / "n.gif"))
    assert res.exit_code == 0, res.output
    assert run(*args, "--class", "1", "--out", str(tmp_path / "i.gif")).exit_code == 0
    assert (tmp_path / "n.gif").read_bytes() == (tmp_path / "i.gif").read_bytes()
    res = run(*args, "--class", "Drinks", "--out", str(tmp_path / "x.gif"))
    assert (res.exit_code, res.output) == (
        2,
        "error: --class: 'Drinks' is not a class of this model; its classes are 'Food & Drink', 'Flags'\n",
    )
