"""nn.Modules only: no IO, no Ray."""

from genart.models.registry import build_generator, build_training_modules, generator_spec

__all__ = ["build_generator", "build_training_modules", "generator_spec"]
