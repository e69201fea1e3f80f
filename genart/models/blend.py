"""Latent and class arithmetic for variations and crosses: a child near a parent, a child between two
parents, a blend of classes. Plain PyTorch, one item at a time, so a child's numbers never depend on the
batch it is made in.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two latents a, b (float (D,)) at t in [0, 1] -> float64 (D,): the
    point at fraction t of the great-circle arc from a to b, its length interpolated linearly (White,
    "Sampling Generative Networks", 2016). t = 0 gives a and t = 1 gives b exactly (as float64); nearly
    parallel latents (angle < 1e-7 rad) fall back to linear interpolation."""
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    if t == 0:
        return a64.clone()
    if t == 1:
        return b64.clone()
    na, nb = a64.norm(), b64.norm()
    if float(na) == 0 or float(nb) == 0:
        return (1 - t) * a64 + t * b64
    ua, ub = a64 / na, b64 / nb
    omega = float(torch.acos(torch.clamp(torch.dot(ua, ub), -1.0, 1.0)))
    if abs(math.sin(omega)) < 1e-7:
        return (1 - t) * a64 + t * b64
    s = math.sin(omega)
    direction = (math.sin((1 - t) * omega) / s) * ua + (math.sin(t * omega) / s) * ub
    return ((1 - t) * na + t * nb) * direction


def offset(seed: int, latent_dim: int, radius: float) -> torch.Tensor:
    """The displacement of a child from its parent: float64 (latent_dim,), a direction drawn uniformly on
    the sphere from `seed` (one torch.Generator, standard normal, normalised) times radius *
    sqrt(latent_dim), so `radius` is the RMS change per latent coordinate and the Euclidean distance is
    radius * sqrt(latent_dim). radius 0 gives zeros."""
    gen = torch.Generator().manual_seed(int(seed))
    d = torch.randn(latent_dim, generator=gen, dtype=torch.float64)
    return d * (radius * math.sqrt(latent_dim) / float(d.norm()))


def class_embedding(embed: nn.Embedding, class_ids: torch.Tensor) -> torch.Tensor:
    """A conditional generator's class input: int64 class ids (N,) -> embed(ids); float class weights
    (N, num_classes) (a blend, rows summing to 1) -> the weighted sum of the embedding rows, weights @
    embed.weight (N, embedding_dim). A one-hot row gives exactly that class's row."""
    if class_ids.is_floating_point():
        return class_ids.to(embed.weight.dtype) @ embed.weight
    return embed(class_ids)


def class_weights(table: dict[int, float], num_classes: int) -> torch.Tensor:
    """{class id: weight} -> float32 (num_classes,) weights (the classes not named get 0). Raises ValueError
    for a class id outside 0..num_classes-1."""
    out = torch.zeros(num_classes, dtype=torch.float32)
    for k, w in table.items():
        if not 0 <= k < num_classes:
            raise ValueError(f"class {k} is not one of this model's 0..{num_classes - 1}")
        out[k] += w
    return out
