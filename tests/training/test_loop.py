"""The per-worker loop without Ray: steps change weights, checkpoints resume exactly."""

import numpy as np
import torch

from genart.config import load_config
from genart.data.digits import load_digits_arrays
from genart.training.loop import build_state, cached_batches, run_training
from tests.config.test_configs import ROOT


def _cfg(name, steps, **extra):
    overrides = [f"train.steps={steps}", "train.log_every=1", "train.batch_size=16"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(ROOT / "configs/train" / name, overrides)


def _batches(seed=0):
    imgs, labels = load_digits_arrays(32)
    return cached_batches(iter([{"image": imgs[:200], "label": labels[:200]}]), 16, seed, 0)


def test_digits_are_bright_ink_on_dark():
    imgs, labels = load_digits_arrays(32)
    assert imgs.shape == (1797, 32, 32, 1) and imgs.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    assert imgs[:, 0, 0, 0].max() == 0  # corners are background
    assert imgs.max() == 255


def test_gan_steps_train_and_report(tmp_path):
    cfg = _cfg("cgan-digits.yaml", 3, **{"model.g_width": 8, "model.d_width": 8})
    state = build_state(cfg, torch.device("cpu"))
    before = {k: v.clone() for k, v in state.modules["G"].state_dict().items()}
    reports = []
    run_training(state, _batches(), torch.device("cpu"), 1, lambda s, m, c: reports.append((m["step"], c)))
    assert state.step == 3
    assert reports == [(1, False), (2, False), (3, True)]
    after = state.modules["G"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_checkpoint_restores_modules_optimizers_and_step():
    cfg = _cfg("vae-digits.yaml", 2, **{"model.width": 8})
    half = build_state(cfg, torch.device("cpu"))
    batches = _batches()
    run_training(half, batches, torch.device("cpu"), 1, lambda *a: None)
    saved = half.state_dict()
    cfg4 = _cfg("vae-digits.yaml", 4, **{"model.width": 8})
    resumed = build_state(cfg4, torch.device("cpu"))
    resumed.load_state_dict(saved)
    assert resumed.step == 2
    for k, v in half.modules["VAE"].state_dict().items():
        assert torch.equal(v, resumed.modules["VAE"].state_dict()[k]), k
    adam = resumed.optimizers["VAE"].state_dict()["state"]
    assert int(next(iter(adam.values()))["step"]) == 2
    reports = []
    run_training(resumed, batches, torch.device("cpu"), 1, lambda s, m, c: reports.append(m["step"]))
    assert reports == [3, 4]  # continues, does not start over


def test_worker_threads_share_the_cpus_this_process_may_use(monkeypatch):
    import os

    from genart.training.loop import worker_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert [worker_threads(n) for n in (1, 2, 4, 6, 8, 0)] == [6, 3, 1, 1, 1, 6]


def test_the_ema_decay_ramps_up_from_its_start_to_the_configured_decay():
    from genart.training.loop import ema_decay_at

    assert [ema_decay_at(s, 0.999, 100) for s in (0, 99)] == [0.0, 0.0]
    assert ema_decay_at(100, 0.999, 100) == 0.1 and ema_decay_at(190, 0.999, 100) == 0.91
    assert ema_decay_at(990, 0.999, 100) == 891 / 900  # 0.99 after 890 steps
    assert ema_decay_at(9090, 0.999, 100) == 0.999 and ema_decay_at(10**6, 0.999, 100) == 0.999
    assert ema_decay_at(5000, 0.9, 0) == 0.9
