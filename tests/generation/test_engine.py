"""The GPU path's options on a CPU (no Ray): pixels against the fp32 reference, encode workers, gpu_check.

bf16 tolerance (documented in docs/PERFORMANCE.md): CPU autocast bf16 keeps every pixel within
BF16_MAX_DIFF levels of fp32 and the mean within BF16_MEAN_DIFF (measured on the trained cGAN: max 2,
mean 0.23; on the untrained test bundle: max 1). bf16 outputs regenerate only with precision bf16.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import genart
from genart import load_bundle
from genart.bundle import read_meta
from genart.config.generate import GenerateConfig, InferenceConfig
from genart.generation import engine
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.images import Batch

BF16_MAX_DIFF = 4
BF16_MEAN_DIFF = 0.5

SEEDS = np.arange(1000, 1200)
CLASSES = SEEDS % 10


@pytest.fixture
def reference(tiny_bundle):
    return genart.load_bundle(tiny_bundle).generate(SEEDS, CLASSES)


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int))


def test_engine_defaults_are_the_reference_pixels(tiny_bundle, reference):
    bundle = load_bundle(tiny_bundle, inference=InferenceConfig())
    out = bundle.generate(SEEDS, CLASSES)
    assert out.dtype == np.uint8 and out.shape == reference.shape == (200, 32, 32, 1)
    assert np.array_equal(out, reference)
    times = bundle.engine.times.snapshot()
    assert set(times) == {"latents", "generate", "copy"} and all(v >= 0 for v in times.values())


def test_channels_last_within_one(tiny_bundle, reference):
    out = load_bundle(tiny_bundle, inference=InferenceConfig(channels_last=True)).generate(SEEDS, CLASSES)
    assert out.shape == reference.shape and out.dtype == np.uint8
    assert _diff(out, reference).max() <= 1


def test_bf16_on_cpu_within_tolerance(tiny_bundle, reference):
    out = load_bundle(tiny_bundle, inference=InferenceConfig(precision="bf16")).generate(SEEDS, CLASSES)
    assert out.shape == reference.shape and out.dtype == np.uint8
    d = _diff(out, reference)
    assert d.max() <= BF16_MAX_DIFF and d.mean() <= BF16_MEAN_DIFF
    assert d.any(), "bf16 autocast did not run: the pixels are the fp32 ones"


def test_engine_checks_class_ids(tiny_bundle):
    bundle = load_bundle(tiny_bundle, inference=InferenceConfig(precision="bf16"))
    with pytest.raises(ValueError, match="class-conditional"):
        bundle.generate(SEEDS)
    with pytest.raises(ValueError, match="class ids must be in 0..9"):
        bundle.generate(SEEDS[:2], [0, 10])


def test_inference_keys_in_the_job_identity():
    from genart.generation.runner import job_record

    base = {"kind": "generate", "model": "m", "output": "o"}

    def record(**kw):
        return job_record(GenerateConfig.model_validate({**base, **kw}), {"model_id": "x"}, "j")

    default = record()
    assert "inference" not in default["config"]  # hashes of jobs written before the key existed hold
    fast = record(inference={"channels_last": True, "compile": True, "encode_workers": 8})
    assert fast["config_hash"] == default["config_hash"]  # execution-only: a resumed job may change them
    bf16 = record(inference={"precision": "bf16"})
    assert bf16["config"]["inference"] == {"precision": "bf16"}
    assert bf16["config_hash"] != default["config_hash"]  # bf16 changes pixels: part of the job's identity


def test_encode_workers_give_identical_shards(tiny_bundle, tmp_path, make_cfg):
    meta = read_meta(tiny_bundle, None)
    digests, files = [], []
    for workers in (1, 3, 0):  # 0: in the replica's own thread (what in-process replicas do)
        out = tmp_path / f"w{workers}"
        cfg = make_cfg(
            tiny_bundle,
            str(out),
            count=300,
            shard_size=150,
            batch_size=100,
            inference={"encode_workers": workers or None},
        )
        replica = GeneratorReplica(cfg, "job", meta["model_id"], encode_workers=0 if workers == 0 else None)
        assert replica._pool.workers == workers
        summary = replica.run_shard(Plan.from_config(cfg, 10).shard(1))
        assert (summary.shard, summary.n) == (1, 150)
        table = pq.read_table(out / "metadata" / "part-00001.parquet")
        assert table.column("id").to_pylist() == list(range(150, 300))
        digests.append(table.drop(["created_at"]).to_pylist())
        files.append({p: (out / p).read_bytes() for p in table.column("path").to_pylist()})
        assert {"latents", "generate", "copy", "encode_write"} <= set(replica.times.snapshot())
    assert digests[0] == digests[1] == digests[2]
    assert files[0] == files[1] == files[2]


def test_an_inline_encode_pool_runs_in_the_callers_thread_and_hands_errors_back():
    import threading

    pool = engine.EncodePool(0)
    seen = []
    done = pool.submit(lambda shared, xs: seen.append((threading.current_thread(), list(xs))), None, [1, 2])
    assert done.done() and seen == [(threading.current_thread(), [1, 2])]

    def fail(shared, xs):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        pool.submit(fail, None, [1]).result()
    pool.shutdown()


def test_encode_pool_slices_batches():
    seen = []
    pool = engine.EncodePool(3)
    ids = np.arange(60)
    batch = Batch(ids, ids * 3, None, np.zeros((60, 2, 2, 1), np.uint8), score=ids * 2.0)
    fut = pool.submit(lambda shared, part, cls: seen.append((shared, part, cls)), "s", batch, None)
    fut.result()
    pool.shutdown()
    assert sorted(x for _, part, _ in seen for x in part.ids) == list(range(60)) and len(seen) == 3
    for shared, part, cls in seen:
        assert shared == "s" and cls is None and part.phash is None and part.class_ids is None
        assert list(part.score) == [2 * i for i in part.ids] and list(part.seeds) == [3 * i for i in part.ids]
        assert part.images.shape == (len(part), 2, 2, 1)


def test_encode_pool_reraises_a_slice_failure():
    def fn(_, ids):
        if 30 in ids:
            raise OSError("disk full")

    pool = engine.EncodePool(2)
    with pytest.raises(OSError, match="disk full"):
        pool.submit(fn, None, np.arange(64)).result()
    pool.shutdown()


def test_choose_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert engine.choose_device(0.5) == torch.device("cpu")
    assert engine.choose_device(0.0) == torch.device("cpu")
    assert engine.use_channels_last("auto", torch.device("cpu")) is False
    assert engine.use_channels_last("auto", torch.device("cuda")) is True


def test_gpu_check_without_a_gpu(monkeypatch, capsys):
    from genart.bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == gpu_check.EXIT_NO_GPU == 3
    out = capsys.readouterr().out
    assert "no CUDA GPU visible" in out and "nothing was run" in out


@pytest.mark.slow
def test_compile_on_cpu_within_one(tiny_bundle, reference):
    """torch.compile (inductor, needs a C compiler) takes tens of seconds on a CPU: slow."""
    out = load_bundle(tiny_bundle, inference=InferenceConfig(compile=True)).generate(SEEDS, CLASSES)
    assert _diff(out, reference).max() <= 1
