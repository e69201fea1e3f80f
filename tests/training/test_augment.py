"""DiffAugment (genart/training/augment.py): shapes kept, reproducible draws, differentiable, alpha untouched by
colour, the pixel facts of translation and cutout, the policy key, and where the GAN steps apply it. No Ray."""

from __future__ import annotations

import pytest
import torch

from genart.config import load_config
from genart.errors import ConfigError
from genart.training import augment
from genart.training.augment import DiffAugment, diff_augment
from genart.training.steps import GanState, gan_step
from tests.config.test_configs import ROOT

ALL = ("color", "translation", "cutout")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype_are_kept(channels, dtype):
    x = torch.rand(5, channels, 32, 32, dtype=dtype) * 2 - 1
    y = diff_augment(x, ALL, _gen())
    assert y.shape == x.shape and y.dtype == dtype and y.is_contiguous()
    assert not torch.equal(y, x)


def test_the_same_generator_gives_the_same_output():
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    a, b = diff_augment(x, ALL, _gen(7)), diff_augment(x, ALL, _gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, ALL, _gen(8)))
    # the policy object: same seed, rank and step -> same draws; reseed(step) restarts them
    one, two = DiffAugment("color,translation,cutout", seed=3, rank=1), DiffAugment(list(ALL), seed=3, rank=1)
    first = one(x)
    assert torch.equal(first, two(x))
    assert not torch.equal(first, DiffAugment(list(ALL), seed=3, rank=0)(x))
    assert not torch.equal(one(x), first)  # the draws go on
    one.reseed(0)
    assert torch.equal(one(x), first)


def test_global_rng_is_not_touched():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    diff_augment(torch.zeros(4, 3, 16, 16), ALL, _gen())
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("op", ALL)
def test_gradients_flow_to_the_input(op):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    diff_augment(x, (op,), _gen()).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_colour_leaves_alpha_untouched_and_changes_rgb():
    x = torch.rand(6, 4, 16, 16) * 2 - 1
    y = diff_augment(x, ("color",), _gen())
    assert torch.equal(y[:, 3], x[:, 3])
    assert (y[:, :3] - x[:, :3]).abs().amax(dim=(1, 2, 3)).min() > 0  # every image's colour changed
    # the reference's saturation mixes alpha into the channel mean: here the RGB result equals colour on RGB alone
    assert torch.equal(y[:, :3], diff_augment(x[:, :3].clone(), ("color",), _gen()))


def test_colour_on_a_grey_image_is_brightness_only():
    x = torch.full((2, 1, 8, 8), 0.25)
    b = torch.rand(2, 1, 1, 1, generator=_gen(1))  # brightness draws first
    y = diff_augment(x, ("color",), _gen(1))
    # a constant grey image: saturation is the identity for one channel, contrast keeps a constant
    assert torch.allclose(y, x + (b - 0.5), atol=1e-6)


def test_translation_moves_whole_pixels_and_fills_zero():
    n, side = 16, 64
    x = torch.full((n, 3, side, side), 0.5)
    y = augment.translation(x, _gen(0))
    assert set(torch.unique(y).tolist()) <= {0.0, 0.5}
    shifted = 0
    for img in y[:, 0]:
        zero_rows = int((img == 0).all(dim=1).sum())
        zero_cols = int((img == 0).all(dim=0).sum())
        assert zero_rows <= 8 and zero_cols <= 8  # shift at most round(64 * 0.125) = 8
        # vacated pixels are exactly the zero rows and columns, each at one border
        assert int((img == 0).sum()) == side * zero_rows + side * zero_cols - zero_rows * zero_cols
        assert bool((img[:zero_rows] == 0).all()) or bool((img[side - zero_rows :] == 0).all())
        shifted += zero_rows + zero_cols > 0
    assert shifted > n // 2
    # a marker pixel moves by the drawn offset: the same draws as translation's own
    gen = _gen(5)
    tx = int(torch.randint(-8, 9, (1, 1, 1), generator=gen))
    ty = int(torch.randint(-8, 9, (1, 1, 1), generator=gen))
    marker = torch.zeros(1, 1, side, side)
    marker[0, 0, 30, 20] = 1.0
    moved = augment.translation(marker, _gen(5))
    assert moved[0, 0, 30 - tx, 20 - ty] == 1.0 and float(moved.sum()) == 1.0


def test_cutout_zeroes_one_clipped_square_of_half_the_side():
    n, side = 32, 64
    x = torch.full((n, 4, side, side), 0.5)
    y = augment.cutout(x, _gen(0))
    full = 0
    for img in y:
        assert torch.equal(img[0] == 0, img[3] == 0)  # every channel (alpha too) blanked at the same pixels
        zeros = (img[0] == 0).nonzero()
        r0, c0 = zeros.min(0).values.tolist()
        r1, c1 = zeros.max(0).values.tolist()
        h, w = r1 - r0 + 1, c1 - c0 + 1
        assert h <= 32 and w <= 32 and len(zeros) == h * w  # one rectangle
        assert (h == 32 or r0 == 0 or r1 == side - 1) and (w == 32 or c0 == 0 or c1 == side - 1)
        full += len(zeros) == 32 * 32
    assert full > 0


def test_policy_values():
    assert augment.parse("") == () and augment.parse(None) == ()
    assert augment.parse("cutout, color") == ("cutout", "color")
    assert augment.parse(["translation"]) == ("translation",)
    with pytest.raises(
        ConfigError, match=r"^train.augment: unknown op 'blur'; allowed: color, translation, cutout"
    ):
        augment.parse("color,blur")
    with pytest.raises(ConfigError, match="train.augment: an op is listed twice"):
        augment.parse(["color", "color"])


def _train_cfg(*overrides):
    return load_config(ROOT / "configs/train/cgan-digits.yaml", list(overrides))


def test_config_key():
    assert _train_cfg().train.augment == ""  # off by default: the digits config is unchanged
    folder = load_config(ROOT / "configs/train/cgan-folder.yaml", ["data.source=/art"])
    assert folder.train.augment == "color,translation,cutout"
    assert (folder.model.image_size, folder.model.channels, folder.model.loss) == (64, 3, "hinge")
    assert _train_cfg("train.augment=[color, cutout]").train.augment == "color,cutout"
    assert _train_cfg("train.augment=translation,color").train.augment == "translation,color"
    with pytest.raises(ConfigError) as err:
        _train_cfg("train.augment=color,zoom")
    assert "train.augment: unknown op 'zoom'; allowed: color, translation, cutout" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "configs/train/vae-digits.yaml", ["train.augment=color"])
    assert "train.augment: DiffAugment augments what a GAN's discriminator sees" in str(err.value)


class _Recorder:
    def __init__(self):
        self.sizes = []

    def __call__(self, x):
        self.sizes.append(len(x))
        return x.flip(3)  # anything D could not see otherwise


class _D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.seen = []

    def forward(self, x, y=None):
        self.seen.append(x.detach().clone())
        return self.w * x.mean(dim=(1, 2, 3))


class _G(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, z, y=None):
        return (self.w * z[:, :1, None, None]).expand(-1, 3, 4, 4) + torch.arange(4.0)


def test_gan_steps_show_d_augmented_real_and_fake_in_both_steps():
    torch.manual_seed(0)
    G, D, rec = _G(), _D(), _Recorder()
    s = GanState(
        G,
        D,
        G,
        torch.optim.SGD(G.parameters(), 0.1),
        torch.optim.SGD(D.parameters(), 0.1),
        "hinge",
        2,
        0,
        rec,
    )
    x = torch.rand(3, 3, 4, 4)
    gan_step(s, x, None)
    assert rec.sizes == [6, 3]  # D step: real + fake together; G step: the fakes
    assert torch.equal(D.seen[0][:3], x.flip(3))  # the reals D saw are T(real)
    # the fakes D saw, in both steps, are flipped too: G's ramp 0,1,2,3 along the width runs backwards
    assert torch.allclose(torch.diff(D.seen[0][3:], dim=3), torch.tensor(-1.0))
    assert torch.allclose(torch.diff(D.seen[1], dim=3), torch.tensor(-1.0))


def _losses(*overrides, steps=3):
    from genart.data.digits import load_digits_arrays
    from genart.training.loop import build_state, cached_batches, run_training

    cfg = _train_cfg(
        f"train.steps={steps}",
        "train.log_every=1",
        "train.batch_size=16",
        "model.g_width=8",
        "model.d_width=8",
        *overrides,
    )
    imgs, labels = load_digits_arrays(32)
    batches = cached_batches(iter([{"image": imgs[:64], "label": labels[:64]}]), 16, 0, 0)
    state = build_state(cfg, torch.device("cpu"))
    out = []
    run_training(
        state, batches, torch.device("cpu"), 1, lambda s, m, c: out.append((m["loss_d"], m["loss_g"]))
    )
    return out, state


def test_training_with_augment_is_reproducible_and_differs_from_without():
    on, state = _losses("train.augment=color,translation,cutout")
    assert state.augment is not None and state.augment.ops == ALL
    assert _losses("train.augment=color,translation,cutout")[0] == on
    off, plain = _losses()
    assert plain.augment is None and off != on
    # a loaded checkpoint restarts the draws from its step, as a fresh worker resuming there would
    saved = state.state_dict()
    _, resumed = _losses("train.augment=color,translation,cutout", steps=1)
    resumed.load_state_dict(saved)
    fresh = DiffAugment(ALL, seed=0, rank=0, step=3)
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(resumed.augment(x), fresh(x))


def test_turning_augment_on_is_a_different_training_job():
    from genart.training import identity

    recorded = identity.record(_train_cfg())
    assert recorded["identity"]["train.augment"] == ""
    assert identity.differences(recorded, _train_cfg("train.augment=cutout")) == [
        "train.augment: '' -> 'cutout'"
    ]
    assert identity.differences(recorded, _train_cfg("train.augment=")) == []
    # a record written before the key existed does not name it: not compared (identity's rule for new keys)
    old = {**recorded, "identity": {k: v for k, v in recorded["identity"].items() if k != "train.augment"}}
    assert identity.differences(old, _train_cfg()) == []
