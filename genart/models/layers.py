"""Building blocks shared by the GAN and the VAE."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


class SelfAttention(nn.Module):
    """SAGAN self-attention: softmax(QK^T / sqrt(d_k)) V, added back through a learned gate gamma (starts at 0)."""

    def __init__(self, channels: int, use_sn: bool = False):
        super().__init__()
        self.d_k = max(channels // 8, 1)
        self.query = maybe_sn(nn.Conv2d(channels, self.d_k, 1, bias=False), use_sn)
        self.key = maybe_sn(nn.Conv2d(channels, self.d_k, 1, bias=False), use_sn)
        self.value = maybe_sn(nn.Conv2d(channels, channels, 1, bias=False), use_sn)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (b, hw, d_k)
        k = self.key(x).flatten(2).transpose(1, 2)  # (b, hw, d_k)
        v = self.value(x).flatten(2).transpose(1, 2)  # (b, hw, c)
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # scales by 1/sqrt(d_k)
        return x + self.gamma * out.transpose(1, 2).reshape(b, c, h, w)


MAX_ATTENTION_SIDE = 64  # attention over 64x64 = 4096 positions; at 128x128 it would need 1 GB per image


def num_resamples(image_size: int) -> int:
    """Number of x2 up/down-samplings between 4x4 and image_size (32 -> 3, 64 -> 4, 128 -> 5, 256 -> 6).
    Raises ValueError unless image_size is 4 * 2^n with n >= 1."""
    n = (image_size // 4).bit_length() - 1
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"image_size must be 4 * 2^n (32, 64, 128, 256), got {image_size}")
    return n


def attention_side(image_size: int) -> int:
    """The feature-map side where G and D put their self-attention block: half the image side (SAGAN), at
    most MAX_ATTENTION_SIDE (so 16, 32, 64, 64 for 32, 64, 128, 256 px)."""
    return min(image_size // 2, MAX_ATTENTION_SIDE)
