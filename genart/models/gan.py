"""DCGAN-style generator and discriminator; optional SAGAN attention, class embedding and projection D."""

from __future__ import annotations

import torch
from torch import nn

from genart.models.blend import class_embedding
from genart.models.layers import SelfAttention, attention_side, maybe_sn, num_resamples


class Generator(nn.Module):
    """z (N, latent_dim) [+ class ids (N,), or float class weights (N, num_classes): a blend] -> images
    (N, C, S, S) in [-1, 1]."""

    def __init__(self, image_size=32, channels=1, latent_dim=64, num_classes=0, g_width=64, attention=False):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        n_up = num_resamples(image_size)
        widths = [g_width * min(2 ** (n_up - 1 - i), 8) for i in range(n_up)]  # e.g. 256,128,64
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, widths[0] * 16, bias=False),
            nn.Unflatten(1, (widths[0], 4, 4)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for i in range(n_up):
            c_in, c_out = widths[i], widths[min(i + 1, n_up - 1)]
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
            if attention and 4 * 2 ** (i + 1) == attention_side(image_size):
                blocks.append(SelfAttention(c_out))
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if class_ids is None:
                raise ValueError("this generator is class-conditional: pass class_ids")
            z = torch.cat([z, class_embedding(self.embed, class_ids)], dim=1)
        return self.to_image(self.blocks(self.project(z)))


class Discriminator(nn.Module):
    """images (N, C, S, S) [+ class ids] -> logits (N,). Conditional: projection discriminator (Miyato 2018)."""

    def __init__(
        self, image_size=32, channels=1, num_classes=0, d_width=64, attention=False, spectral_norm=True
    ):
        super().__init__()
        n_down = num_resamples(image_size)
        widths = [d_width * min(2**i, 8) for i in range(n_down)]
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate(widths):
            layers += [maybe_sn(nn.Conv2d(c_in, c_out, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2, True)]
            if attention and image_size // 2 ** (i + 1) == attention_side(image_size):
                layers.append(SelfAttention(c_out, use_sn=spectral_norm))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.linear = maybe_sn(nn.Linear(c_in, 1), spectral_norm)
        self.embed = maybe_sn(nn.Embedding(num_classes, c_in), spectral_norm) if num_classes else None

    def forward(self, x: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x).sum(dim=(2, 3))  # global sum pooling
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(class_ids) * h).sum(dim=1)
        return out
