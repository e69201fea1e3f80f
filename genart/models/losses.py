"""GAN and VAE losses (pure functions of logits / tensors)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # non-saturating: L_D = -[log D(x) + log(1 - D(G(z)))], with D = sigmoid(logit)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "hinge":
        return -fake_logits.mean()
    # non-saturating: L_G = -log D(G(z))
    return F.softplus(-fake_logits).mean()


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float):
    """Per-image sums averaged over the batch: reconstruction (squared error) + beta * KL(q(z|x) || N(0, I))."""
    rec = F.mse_loss(recon, x, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return rec + beta * kl, rec, kl
