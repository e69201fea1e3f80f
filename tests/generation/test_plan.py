"""The shard plan: ranges, determinism, seeds independent of shard size, class assignment. No Ray."""

from __future__ import annotations

import types

import numpy as np
import pytest

from genart.config.generate import ClassesConfig
from genart.errors import ConfigError
from genart.generation.plan import Plan, class_ids_for
from genart.ids import item_seeds


def _plan(count=1050, shard_size=100, seed=3, classes=None, num_classes=10):
    return Plan(count, shard_size, seed, classes or ClassesConfig(), num_classes)


def test_shards_cover_ids_exactly_once():
    plan = _plan()
    assert plan.num_shards == 11
    specs = list(plan.pending())
    assert [s.shard for s in specs] == list(range(11))
    assert (specs[0].start, specs[0].stop) == (0, 100)
    assert (specs[-1].start, specs[-1].stop, specs[-1].n) == (1000, 1050, 50)
    ids = np.concatenate([s.ids for s in specs])
    assert np.array_equal(ids, np.arange(1050))
    assert all(len(s.seeds) == s.n and s.seeds.dtype == np.int64 for s in specs)


def test_pending_is_lazy_and_skips_committed():
    plan = _plan(count=10**10, shard_size=1000)
    gen = plan.pending({0, 2})
    assert isinstance(gen, types.GeneratorType)
    assert [next(gen).shard for _ in range(3)] == [1, 3, 4]
    assert plan.num_shards == 10**7
    with pytest.raises(IndexError):
        plan.shard(10**7)


def test_plan_is_deterministic():
    a, b = _plan().shard(4), _plan().shard(4)
    assert np.array_equal(a.seeds, b.seeds) and np.array_equal(a.class_ids, b.class_ids)
    assert not np.array_equal(_plan(seed=4).shard(4).seeds, a.seeds)


@pytest.mark.parametrize("shard_size", [1, 7, 100, 1050])
def test_seeds_and_classes_do_not_depend_on_shard_size(shard_size):
    weighted = ClassesConfig(mode="weighted", ids=[1, 5, 9], weights=[1, 2, 3])
    ref = _plan(classes=weighted)
    plan = _plan(shard_size=shard_size, classes=weighted)
    seeds = np.concatenate([s.seeds for s in plan.pending()])
    classes = np.concatenate([s.class_ids for s in plan.pending()])
    assert np.array_equal(seeds, item_seeds(3, np.arange(1050)))
    assert np.array_equal(seeds, np.concatenate([s.seeds for s in ref.pending()]))
    assert np.array_equal(classes, np.concatenate([s.class_ids for s in ref.pending()]))


def test_class_modes():
    ids = np.arange(12)
    rr = class_ids_for(ClassesConfig(), 10, 0, ids)
    assert rr.dtype == np.int32 and rr.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    cyc = class_ids_for(ClassesConfig(mode="list", ids=[3, 7]), 10, 0, ids)
    assert cyc.tolist() == [3, 7] * 6
    assert class_ids_for(ClassesConfig(), 0, 0, ids) is None  # unconditional model


def test_weighted_classes_follow_weights():
    cfg = ClassesConfig(mode="weighted", ids=[2, 4, 8], weights=[0.7, 0.2, 0.1])
    got = class_ids_for(cfg, 10, 11, np.arange(20000))
    share = {c: float(np.mean(got == c)) for c in (2, 4, 8)}
    assert set(np.unique(got).tolist()) == {2, 4, 8}
    assert abs(share[2] - 0.7) < 0.02 and abs(share[4] - 0.2) < 0.02 and abs(share[8] - 0.1) < 0.02
    # per-item: the same id keeps its class whatever else is asked alongside it
    assert np.array_equal(class_ids_for(cfg, 10, 11, np.arange(100, 200)), got[100:200])
    zero = ClassesConfig(mode="weighted", ids=[2, 4], weights=[0, 1])
    assert set(class_ids_for(zero, 10, 0, np.arange(500)).tolist()) == {4}


def test_class_ids_outside_the_model_are_a_config_error(make_cfg):
    cfg = make_cfg("m", "o", classes={"mode": "list", "ids": [1, 12]})
    with pytest.raises(ConfigError, match=r"classes.ids: \[12\]"):
        Plan.from_config(cfg, num_classes=10)
    assert Plan.from_config(cfg, num_classes=13).num_shards == 10
