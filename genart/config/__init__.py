"""Typed job configs: YAML + `--set` overrides -> pydantic models (extra keys forbidden)."""

from genart.config.generate import GenerateConfig
from genart.config.loader import apply_overrides, config_hash, load_config, validate
from genart.config.train import GanModelConfig, TrainConfig, VaeModelConfig

__all__ = [
    "GanModelConfig",
    "GenerateConfig",
    "TrainConfig",
    "VaeModelConfig",
    "apply_overrides",
    "config_hash",
    "load_config",
    "validate",
]
