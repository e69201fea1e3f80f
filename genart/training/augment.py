"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020,
https://arxiv.org/abs/2006.10738): random colour, translation and cutout applied to every image D sees, real
and fake alike, differentiably, so G learns through the augmentation and never learns the augmentation itself.

Ported from DiffAugment_pytorch.py of https://github.com/mit-han-lab/data-efficient-gans (file at 3a5ba9f),
with three changes: every random draw comes from a seeded torch.Generator (reproducible runs, on CPU, then
moved to the images' device), `torch.meshgrid(..., indexing="ij")` (the reference's implicit indexing is
deprecated), and colour changes the RGB channels only (the reference's saturation mixes the alpha channel of
an RGBA image into its per-pixel mean); translation and cutout move or blank every channel, alpha included.

The original code carries this notice:

    Copyright (c) 2020, Shengyu Zhao, Zhijian Liu, Ji Lin, Jun-Yan Zhu, and Song Han
    All rights reserved.

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this
      list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above copyright notice,
      this list of conditions and the following disclaimer in the documentation
      and/or other materials provided with the distribution.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
    AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
    IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
    DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
    FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
    DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
    SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
    CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
    OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
    OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from genart.config.train import augment_policy
from genart.errors import ConfigError

TRANSLATION_RATIO = 0.125  # shift of up to 1/8 of the side, in whole pixels (reference default)
CUTOUT_RATIO = 0.5  # a square of half the side (reference default)


def _uniform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(N, 1, 1, 1) draws from U[0, 1), one per image, in x's dtype on x's device."""
    return torch.rand(x.size(0), 1, 1, 1, generator=gen).to(device=x.device, dtype=x.dtype)


def _ints(lo: int, hi: int, n: int, gen: torch.Generator, device) -> torch.Tensor:
    """(n, 1, 1) integers in lo..hi-1."""
    return torch.randint(lo, hi, size=(n, 1, 1), generator=gen).to(device)


def brightness(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x + U(-0.5, 0.5) per image."""
    return x + (_uniform(x, gen) - 0.5)


def saturation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The deviation from each pixel's channel mean scaled by U(0, 2) per image (identity for one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, gen) * 2) + mean


def contrast(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The deviation from each image's mean scaled by U(0.5, 1.5)."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, gen) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Each image shifted by whole pixels in -s..s on both axes (s = round(side * ratio)); vacated pixels 0."""
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = _ints(-sx, sx + 1, n, gen, x.device)
    ty = _ints(-sy, sy + 1, n, gen, x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """A (side * ratio)-square of each image set to 0 at a random centre (clipped at the borders)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = _ints(0, h + (1 - ch % 2), n, gen, x.device)
    oy = _ints(0, w + (1 - cw % 2), n, gen, x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness, saturation, contrast on the colour channels (the first 3, or the one grey channel);
    a 4th (alpha) channel passes through unchanged."""
    c = min(x.size(1), 3)
    rgb = contrast(saturation(brightness(x[:, :c], gen), gen), gen)
    return rgb if c == x.size(1) else torch.cat([rgb, x[:, c:]], dim=1)


OPS = {"color": color, "translation": translation, "cutout": cutout}


def parse(policy) -> tuple[str, ...]:
    """The ops of a `train.augment` value (a string `a,b`, a list, "" or None = none), in order.
    Raises ConfigError naming train.augment for an unknown or repeated op."""
    try:
        canonical = augment_policy(policy)
    except ValueError as exc:
        raise ConfigError(f"train.augment: {exc} (got {policy!r})") from exc
    return tuple(canonical.split(",")) if canonical else ()


def diff_augment(x: torch.Tensor, ops: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """x (N, C, H, W) in [-1, 1], C in 1, 3, 4 -> the same shape and dtype with `ops` applied in order, each
    parameter drawn per image from `gen` (a CPU generator). Differentiable in x."""
    for op in ops:
        x = OPS[op](x, gen)
    return x.contiguous() if ops else x


class DiffAugment:
    """The policy of a run and its own generator: `aug(x)` augments a batch. Seeded from the run's seed, the
    worker's rank and the step it starts at, so a run (and a resumed run) draws the same augmentations."""

    def __init__(self, policy, seed: int, rank: int = 0, step: int = 0):
        self.ops = parse(policy)
        self.seed, self.rank = seed, rank
        self.gen = torch.Generator()
        self.reseed(step)

    def reseed(self, step: int) -> None:
        """Restart the draws as a run that starts at `step` does (after a checkpoint is loaded)."""
        mixed = (((self.seed * 1_000_003) + self.rank) * 1_000_003 + step) % (2**63)
        self.gen.manual_seed(mixed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.ops, self.gen)
