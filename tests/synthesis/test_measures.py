"""Synthesize's candidates carry score, phash and judged columns measured by the replicas (no Ray here): the
driver reads those columns and never decodes a candidate, and gets exactly what decoding gave before."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from genart.bundle import read_meta, save_untrained_bundle
from genart.bundle.store import TINY_DCGAN
from genart.config.synthesize import SynthesizeConfig
from genart.data.digits import pool_to_8x8
from genart.filters.score import decode_images, phash64
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.storage.fs import get_fs
from genart.synthesis import runner
from genart.synthesis.select import class_schedule


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("measures")
    uri = str(tmp / "bundle")
    save_untrained_bundle(uri, {**TINY_DCGAN, "num_classes": 10}, seed=0, bn_gain=4)
    cfg = SynthesizeConfig.model_validate(
        {
            "kind": "synthesize",
            "model": uri,
            "output": str(tmp / "ds"),
            "per_class": 6,
            "candidate_shard_size": 25,
            "batch_size": 8,
            "filter": {"min_score": 5e-8},
            "dedupe": {"max_distance": 4},
        }
    )
    meta = read_meta(uri)
    return cfg, meta, runner.candidate_measures(cfg, meta, None), class_schedule({c: 6 for c in range(10)})


def _make_round(cfg, meta, gcfg) -> None:
    replica = GeneratorReplica(gcfg, "job", meta["model_id"])
    plan = Plan.from_config(gcfg, meta["num_classes"])
    for spec in plan.pending():
        replica.run_shard(spec)


def _decoded_as_before(fs, gcfg, measures, offset):
    """What the driver computed before the replicas measured: every part read and decoded, then measured."""
    out = []
    for path in runner.round_parts(fs, gcfg.output):
        t, blobs = runner._read_part(fs, gcfg.output, path)
        images = decode_images(blobs)
        labels = t.column("class_id").to_numpy().astype(np.int64)
        out.append(
            (
                t.column("id").to_numpy().astype(np.int64) + offset,
                t.column("seed").to_numpy().astype(np.int64),
                labels,
                phash64(images),
                measures.scorer(images, labels),
                measures.judge.predict(pool_to_8x8(images)) == labels,
            )
        )
    return out


def _check(got, want) -> None:
    assert len(got) == len(want) == 3  # 60 candidates in parts of 25
    for (cand, judged), (ids, seeds, labels, phash, score, right) in zip(got, want, strict=True):
        assert not hasattr(cand, "blobs")
        for a, b in ((cand.ids, ids), (cand.seeds, seeds), (cand.class_ids, labels), (cand.phash, phash)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert cand.score.dtype == np.float32 and np.array_equal(cand.score, score)
        assert judged.dtype == bool and np.array_equal(judged, right)


def test_the_measures_travel_with_the_config_but_never_into_its_record(setup):
    cfg, _, measures, schedule = setup
    assert measures.columns() == ("score", "phash", "judged")
    gcfg = runner.candidate_config(cfg, 0, schedule, measures)
    plain = runner.candidate_config(cfg, 0, schedule)
    assert plain.measures is None and gcfg.measures is measures
    assert gcfg.model_dump(mode="json") == plain.model_dump(mode="json")  # _job.json and identity unchanged
    assert pickle.loads(pickle.dumps(gcfg)).measures.columns() == ("score", "phash", "judged")
    nothing = cfg.model_copy(update={"filter": cfg.filter.model_copy(update={"min_score": None})})
    assert runner.candidate_measures(nothing, setup[1], None).columns() == ("phash",)


def test_iter_round_reads_the_columns_and_decodes_nothing(setup, monkeypatch):
    cfg, meta, measures, schedule = setup
    gcfg = runner.candidate_config(cfg, 0, schedule, measures)
    _make_round(cfg, meta, gcfg)
    fs, root = get_fs(gcfg.output)
    want = _decoded_as_before(fs, gcfg, measures, 1000)

    def no_decoding(blobs):
        raise AssertionError("a candidate was decoded")

    monkeypatch.setattr(runner, "decode_images", no_decoding)
    _check(list(runner.iter_round(fs, root, gcfg, 1000)), want)


def test_a_round_written_without_the_columns_is_measured_by_the_driver(setup, tmp_path):
    """A round made before the replicas recorded the columns (resumed after an upgrade) gives the same."""
    cfg, meta, measures, schedule = setup
    cfg = cfg.model_copy(update={"output": str(tmp_path / "old")})
    _make_round(cfg, meta, runner.candidate_config(cfg, 0, schedule))  # no measures: no columns
    gcfg = runner.candidate_config(cfg, 0, schedule, measures)
    fs, root = get_fs(gcfg.output)
    _check(list(runner.iter_round(fs, root, gcfg, 0)), _decoded_as_before(fs, gcfg, measures, 0))
