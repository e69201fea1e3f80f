"""Convolutional VAE, optionally class-conditional (labels one-hot into encoder and decoder)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genart.models.layers import num_resamples


class Decoder(nn.Module):
    """z (N, latent_dim) [+ class ids (N,), or float class weights (N, num_classes): a blend, used in place
    of the one-hot] -> images in [-1, 1]: the VAE's generator."""

    def __init__(self, image_size=32, channels=1, latent_dim=32, num_classes=0, width=32):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        n = num_resamples(image_size)
        widths = [width * min(2 ** (n - 1 - i), 8) for i in range(n)]
        self.project = nn.Sequential(
            nn.Linear(latent_dim + num_classes, widths[0] * 16), nn.Unflatten(1, (widths[0], 4, 4))
        )
        blocks: list[nn.Module] = []
        for i in range(n):
            c_in, c_out = widths[i], widths[min(i + 1, n - 1)]
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, True),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if class_ids is None:
                raise ValueError("this decoder is class-conditional: pass class_ids")
            if class_ids.is_floating_point():
                onehot = class_ids.to(z.dtype)
            else:
                onehot = F.one_hot(class_ids, self.num_classes).to(z.dtype)
            z = torch.cat([z, onehot], dim=1)
        return self.to_image(self.blocks(self.project(z)))


class Encoder(nn.Module):
    def __init__(self, image_size=32, channels=1, latent_dim=32, num_classes=0, width=32):
        super().__init__()
        self.num_classes = num_classes
        n = num_resamples(image_size)
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(n):
            c_out = width * min(2**i, 8)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * 16 + num_classes, 2 * latent_dim)

    def forward(self, x: torch.Tensor, class_ids: torch.Tensor | None = None):
        h = self.features(x)
        if self.num_classes:
            h = torch.cat([h, F.one_hot(class_ids, self.num_classes).to(h.dtype)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class VAE(nn.Module):
    def __init__(self, image_size=32, channels=1, latent_dim=32, num_classes=0, width=32):
        super().__init__()
        self.encoder = Encoder(image_size, channels, latent_dim, num_classes, width)
        self.decoder = Decoder(image_size, channels, latent_dim, num_classes, width)

    def forward(self, x: torch.Tensor, class_ids: torch.Tensor | None = None):
        mu, logvar = self.encoder(x, class_ids)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        return self.decoder(z, class_ids), mu, logvar
