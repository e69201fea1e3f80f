"""Model specs (plain dicts stored in model.json) -> nn.Modules. The one place that maps `arch` to classes."""

from __future__ import annotations

from torch import nn

from genart.config.train import GENERATOR_KEYS
from genart.models.gan import Discriminator, Generator
from genart.models.vae import VAE, Decoder


def generator_spec(model_cfg) -> dict:
    """What model.json records so the generator can be rebuilt without the training config."""
    spec = {k: getattr(model_cfg, k) for k in GENERATOR_KEYS[model_cfg.arch]}
    return {"arch": model_cfg.arch, **spec}


def build_generator(spec: dict) -> nn.Module:
    """The exported generator: EMA G for dcgan, the decoder for vae. forward(z, class_ids) -> [-1, 1]."""
    arch = spec.get("arch")
    if arch not in GENERATOR_KEYS:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(GENERATOR_KEYS)}")
    kwargs = {k: spec[k] for k in GENERATOR_KEYS[arch]}
    return Generator(**kwargs) if arch == "dcgan" else Decoder(**kwargs)


def build_training_modules(model_cfg) -> dict[str, nn.Module]:
    """The modules a training run optimises: {'G', 'D'} for dcgan, {'VAE'} for vae."""
    c = model_cfg
    if c.arch == "dcgan":
        return {
            "G": Generator(c.image_size, c.channels, c.latent_dim, c.num_classes, c.g_width, c.attention),
            "D": Discriminator(
                c.image_size, c.channels, c.num_classes, c.d_width, c.attention, c.spectral_norm
            ),
        }
    return {"VAE": VAE(c.image_size, c.channels, c.latent_dim, c.num_classes, c.width)}
