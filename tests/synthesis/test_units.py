"""Unit tests of synthesis without Ray: splits, dedupe, selection, the HF schema, the config."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genart.config import load_config
from genart.config.synthesize import SynthesizeConfig
from genart.errors import ConfigError
from genart.filters.dedupe import BKTree, hamming
from genart.synthesis.select import Candidates, Selection, class_schedule, round_plan
from genart.synthesis.splits import assign_splits, stratified_counts
from genart.synthesis.write import dataset_schema, to_table

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_stratified_counts_keep_classes_and_totals_within_one():
    sizes = {c: 3 for c in range(10)} | {10: 7, 11: 1}
    ratios = {"train": 0.5, "test": 0.5}
    counts = stratified_counts(sizes, ratios)
    for c, n in sizes.items():
        assert sum(counts[c].values()) == n
        assert all(abs(counts[c][s] - r * n) < 1 for s, r in ratios.items())
    total = sum(sizes.values())
    assert all(abs(sum(counts[c][s] for c in sizes) - r * total) <= 1 for s, r in ratios.items())


def test_splits_are_stratified_deterministic_and_disjoint():
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(1000, 1000 + 3 * 47))
    labels = ids % 3
    a = assign_splits(ids, labels, RATIOS, seed=5)
    b = assign_splits(ids[::-1], labels[::-1], RATIOS, seed=5)  # order of the input does not matter
    assert all(np.array_equal(a[s], b[s]) for s in RATIOS)
    assert sorted(np.concatenate(list(a.values()))) == sorted(ids)
    for s, r in RATIOS.items():
        for c in range(3):
            k = int((a[s] % 3 == c).sum())
            assert abs(k - r * 47) < 1, (s, c, k)
    c = assign_splits(ids, labels, RATIOS, seed=6)
    assert not np.array_equal(a["test"], c["test"])


def test_bktree_near_matches_brute_force():
    rng = np.random.default_rng(1)
    base = [int(x) for x in rng.integers(0, 2**63, 300, dtype=np.uint64)]
    # near copies of a few bases, at distances 1..6
    near = [
        h ^ int(sum(1 << int(b) for b in rng.choice(64, d, replace=False)))
        for h, d in zip(base[:60], range(60))
    ]
    hashes = base + [h for h in near]
    tree = BKTree()
    for h in base:
        tree.add(h)
    for q in hashes[:100] + near:
        for r in (0, 3, 6, 12):
            assert tree.near(q, r) == any(hamming(q, h) <= r for h in base)


def _cands(ids, labels, phash, score=None):
    return Candidates(
        ids=np.asarray(ids, np.int64),
        seeds=np.asarray(ids, np.int64) * 10,
        class_ids=np.asarray(labels, np.int64),
        phash=np.asarray(phash, np.uint64),
        score=None if score is None else np.asarray(score, np.float32),
    )


def test_selection_filters_dedupes_and_fills_quotas_in_id_order():
    sel = Selection({0: 2, 1: 1}, min_score=0.5, max_distance=1)
    sel.add_round(
        _cands([3, 0, 1, 2, 4], [0, 0, 0, 1, 1], [0b111, 0, 0b1, 0b110000, 0xFF00], [0.9, 0.9, 0.9, 0.1, 0.8])
    )
    assert [r["id"] for r in sel.rows[0]] == [0, 3]  # id 1 is within 1 bit of id 0
    assert [r["id"] for r in sel.rows[1]] == [4]  # id 2 failed the score
    s0, s1 = sel.stats[0], sel.stats[1]
    assert (s0.generated, s0.rejected_duplicate, s0.kept, s1.rejected_score) == (3, 1, 2, 1)
    assert sel.deficit() == {}
    assert round_plan(sel, 1.5, first=False) == {}
    assert sel.samples == {0: [], 1: []}  # filled by the driver, from the kept candidates, for samples.png
    assert all("bytes" not in r for r in sel.rows[0] + sel.rows[1])


def test_round_plan_and_schedule():
    sel = Selection({0: 10, 1: 4}, min_score=None, max_distance=None)
    assert round_plan(sel, 1.5, first=True) == {0: 10, 1: 4}  # no filter: exactly what is missing
    sel = Selection({0: 10, 1: 4}, min_score=0.5, max_distance=None)
    assert round_plan(sel, 1.5, first=True) == {0: 15, 1: 6}
    assert class_schedule({0: 3, 2: 1}) == [0, 2, 0, 0]


def test_hf_schema_metadata_matches_what_datasets_writes():
    schema = dataset_schema(["zero", "one"], with_score=True)
    meta = json.loads(schema.metadata[b"huggingface"])
    assert meta == {
        "info": {
            "features": {
                "image": {"_type": "Image"},
                "label": {"names": ["zero", "one"], "_type": "ClassLabel"},
                "id": {"dtype": "int64", "_type": "Value"},
                "seed": {"dtype": "int64", "_type": "Value"},
                "phash": {"dtype": "uint64", "_type": "Value"},
                "score": {"dtype": "float32", "_type": "Value"},
            }
        }
    }
    rows = [{"id": 3, "seed": 30, "label": 1, "phash": 2**64 - 1, "score": 0.5}]
    sink = io.BytesIO()
    pq.write_table(to_table(rows, [b"png"], schema), sink)
    t = pq.read_table(io.BytesIO(sink.getvalue()))
    assert t.schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert t.to_pylist()[0]["image"] == {"bytes": b"png", "path": "0000000003.png"}
    assert t.column("phash").to_pylist() == [2**64 - 1]
    # the datasets library reads the same features back from the metadata
    import datasets

    feats = datasets.Features.from_dict(meta["info"]["features"])
    assert feats["label"].names == ["zero", "one"] and isinstance(feats["image"], datasets.Image)
    assert "score" not in dataset_schema(["a"], with_score=False).names


def _cfg(**kw) -> SynthesizeConfig:
    return SynthesizeConfig.model_validate({"kind": "synthesize", "model": "m", "output": "o", **kw})


def test_config_checks(tmp_path):
    assert _cfg().class_counts(3) == {0: 1000, 1: 1000, 2: 1000}
    assert _cfg(per_class={2: 5, 0: 1}).class_counts(3) == {0: 1, 2: 5}
    p = tmp_path / "s.yaml"
    p.write_text("kind: synthesize\nmodel: m\noutput: o\n")
    with pytest.raises(ConfigError, match=r"splits: the ratios sum to 0\.9, not 1"):
        load_config(p, ["splits={train: 0.8, test: 0.1}"])
    assert load_config(p, ["splits={train: 0.7, test: 0.3}"]).splits == {"train": 0.7, "test": 0.3}
    with pytest.raises(ConfigError, match="splits.holdout"):
        load_config(p, ["splits={train: 0.5, holdout: 0.5}"])
    with pytest.raises(ConfigError, match="per_class"):
        load_config(p, ["per_class=0"])
    with pytest.raises(ConfigError, match="dedupe.max_distance"):
        load_config(p, ["dedupe.max_distance=65"])
    with pytest.raises(ConfigError, match="filter.typo"):
        load_config(p, ["filter.typo=1"])


def test_cli_unconditional_bundle_exits_2_naming_model(tmp_path):
    from click.testing import CliRunner

    from genart.cli import main
    from tests.conftest import make_tiny_bundle

    make_tiny_bundle(str(tmp_path / "u"), num_classes=0)
    p = tmp_path / "s.yaml"
    p.write_text(f"kind: synthesize\nmodel: {tmp_path / 'u'}\noutput: {tmp_path / 'o'}\n")
    res = CliRunner().invoke(main, ["synthesize", str(p), "--set", "per_class=3"])
    assert res.exit_code == 2, res.output
    assert "model:" in res.output and "unconditional" in res.output and "Traceback" not in res.output


def test_write_splits_streams_images_in_id_order(tmp_path):
    from fsspec.implementations.local import LocalFileSystem

    from genart.synthesis.write import write_splits

    rows = {i: {"id": i, "seed": i, "label": i % 2, "phash": i, "score": None} for i in range(11)}
    split_rows = {"train": [rows[i] for i in (0, 1, 3, 4, 6, 7, 9)], "test": [rows[i] for i in (2, 5, 8, 10)]}
    schema = dataset_schema(["a", "b"], with_score=False)
    blobs = ((i, b"png%d" % i) for i in range(11))
    files = write_splits(LocalFileSystem(), str(tmp_path), split_rows, schema, 3, blobs)
    assert files == {
        "train": [f"data/train-0000{k}-of-00003.parquet" for k in range(3)],
        "test": ["data/test-00000-of-00002.parquet", "data/test-00001-of-00002.parquet"],
    }
    t = pq.read_table(tmp_path / "data/train-00001-of-00003.parquet")
    assert t.column("id").to_pylist() == [4, 6, 7]
    assert [im["bytes"] for im in t.column("image").to_pylist()] == [b"png4", b"png6", b"png7"]
    with pytest.raises(AssertionError, match="id order"):
        write_splits(LocalFileSystem(), str(tmp_path), split_rows, schema, 3, iter([(1, b""), (0, b"")]))


def test_synthesis_summary_is_a_frozen_record_with_success_key_order():
    import dataclasses

    from genart.synthesis.records import SynthesisSummary

    keys = ["items", "splits", "files", "rounds", "candidates", "rejected_score", "rejected_duplicate",
            "independent_accuracy", "seconds", "model_id", "config_hash", "identity", "genart_version"]  # fmt: skip
    done = dict(zip(keys, range(len(keys)), strict=True))
    summary = SynthesisSummary.from_dict(done)
    assert list(summary.as_dict()) == keys and summary.as_dict() == done
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.items = 3  # type: ignore[misc]
    legacy = {k: v for k, v in done.items() if k != "identity"}  # 0.1.0 wrote no identity
    assert SynthesisSummary.from_dict(legacy).identity is None
    assert SynthesisSummary.from_dict(legacy).as_dict() == legacy


NAMES = ["Flags", "Food & Drink", "7"]


def test_per_class_takes_class_names_and_resolves_them_to_ids():
    from genart.config.synthesize import resolve_per_class

    cfg = _cfg(per_class={"Food & Drink": 4, "Flags": 2})
    resolved = resolve_per_class(cfg, NAMES)
    assert resolved.per_class == {1: 4, 0: 2} and resolved.class_counts(3) == {0: 2, 1: 4}
    ids_only = _cfg(per_class={2: 5})
    assert resolve_per_class(ids_only, NAMES) is ids_only  # identity of id-based datasets unchanged
    # a name wins over a decimal reading; a decimal string that names nothing is the id it always was
    assert resolve_per_class(_cfg(per_class={"7": 1}), NAMES).per_class == {2: 1}
    assert resolve_per_class(_cfg(per_class={"1": 1}), NAMES).per_class == {1: 1}
    with pytest.raises(ValueError, match="resolve_per_class first"):
        cfg.class_counts(3)


@pytest.mark.parametrize(
    "per_class, names, message",
    [
        (
            {"Animals": 1},
            NAMES,
            "per_class: 'Animals' is not a class of this model; its classes are 'Flags', ",
        ),
        ({"Flags": 1, 0: 2}, NAMES, r"per_class: class 0 \(0\) is given twice; give each class once"),
        ({"Flags": 1}, None, "per_class: 'Flags' names a class, but this model has no class names"),
    ],
    ids=["unknown", "twice", "no-names"],
)
def test_per_class_names_that_do_not_resolve_are_refused(per_class, names, message):
    from genart.config.synthesize import resolve_per_class

    with pytest.raises(ConfigError, match=message):
        resolve_per_class(_cfg(per_class=per_class), names)


def test_an_empty_class_name_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("kind: synthesize\nmodel: m\noutput: o\nper_class: {'': 3}\n")
    with pytest.raises(ConfigError, match="per_class.*a class name is empty"):
        load_config(p)
