"""The EMA generator's BatchNorm statistics are measured from its own weights before every checkpoint."""

import copy

import torch
from torch import nn

from genart.models.gan import Generator
from genart.training.loop import build_state, run_training
from genart.training.steps import STANDING_BATCH_SIZE, STANDING_BATCHES, standing_stats
from tests.training.test_loop import _batches, _cfg


def _generator(seed=0):
    torch.manual_seed(seed)
    return Generator(image_size=32, channels=3, latent_dim=16, num_classes=3, g_width=8)


def test_running_stats_are_the_average_of_the_batch_statistics_of_the_same_latents():
    g = _generator()
    standing_stats(g, 16, 3, "cpu", seed=5)
    # the first BatchNorm sees Linear(z ++ embed(y)); replay the same draws and average their batch means/vars
    gen, means, variances = torch.Generator().manual_seed(5), [], []
    with torch.no_grad():
        for b in range(STANDING_BATCHES):
            z = torch.randn(STANDING_BATCH_SIZE, 16, generator=gen)
            y = (torch.arange(STANDING_BATCH_SIZE) + b * STANDING_BATCH_SIZE).remainder(3)
            h = g.project[1](g.project[0](torch.cat([z, g.embed(y)], dim=1)))
            means.append(h.mean(dim=(0, 2, 3)))
            variances.append(h.var(dim=(0, 2, 3), unbiased=True))
    bn = g.project[2]
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, torch.stack(variances).mean(0), rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == STANDING_BATCHES


def test_it_is_deterministic_leaves_eval_mode_and_keeps_momentum_and_the_global_rng():
    a, b = _generator(), _generator()
    rng = torch.get_rng_state()
    standing_stats(a, 16, 3, "cpu")
    standing_stats(b, 16, 3, "cpu")
    assert torch.equal(torch.get_rng_state(), rng)
    for x, y in zip(a.buffers(), b.buffers()):
        assert torch.equal(x, y)
    assert not a.training
    assert {m.momentum for m in a.modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}


def test_stats_copied_from_other_weights_shift_the_output_and_standing_stats_bring_it_back():
    g, other = _generator(0), _generator(1)
    z, y = torch.randn(256, 16, generator=torch.Generator().manual_seed(9)), torch.arange(256) % 3
    with torch.no_grad():
        other.train()(
            torch.randn(256, 16), torch.arange(256) % 3
        )  # other's statistics, as ema_update copies G's
        for dst, src in zip(g.buffers(), other.buffers()):
            dst.copy_(src)
        reference = g.train()(z, y).mean(dim=(0, 2, 3))  # what g draws with its own batch statistics
        shifted = (g.eval()(z, y).mean(dim=(0, 2, 3)) - reference).abs().max().item()
        standing_stats(g, 16, 3, "cpu")
        fixed = (g(z, y).mean(dim=(0, 2, 3)) - reference).abs().max().item()
    assert fixed < 0.02 < shifted


def test_checkpoints_carry_the_standing_stats_of_the_ema_generator():
    cfg = _cfg("cgan-digits.yaml", 3, **{"model.g_width": 8, "model.d_width": 8, "train.checkpoint_every": 3})
    state = build_state(cfg, torch.device("cpu"))
    seen = []

    def on_report(st, metrics, checkpoint):
        if checkpoint:
            seen.append({k: v.clone() for k, v in st.modules["G_ema"].state_dict().items()})

    run_training(state, _batches(), torch.device("cpu"), 1, on_report)
    expected = copy.deepcopy(state.modules["G_ema"])
    standing_stats(expected, cfg.model.latent_dim, cfg.model.num_classes, "cpu", seed=cfg.train.seed)
    assert len(seen) == 1
    for k, v in expected.state_dict().items():
        assert torch.equal(seen[0][k], v), k
    g_mean = state.modules["G"].project[2].running_mean
    assert not torch.equal(seen[0]["project.2.running_mean"], g_mean)  # not G's copied statistics
