"""data.background and data.fit: validated with the key named; at their defaults they leave a digits bundle's
config_hash (and so its model.json bytes) as 0.1.0 wrote them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from genart.config import load_config
from genart.config.loader import config_hash
from genart.errors import ConfigError
from genart.training.trainer import _hash_exclude

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "rgb"),
    [("white", (255, 255, 255)), ("'#102030'", (16, 32, 48)), ("[1, 2, 3]", (1, 2, 3)), ("black", (0, 0, 0))],
)
def test_background_values(value, rgb):
    cfg = load_config(ROOT / "configs/train/cgan-digits.yaml", [f"data.background={value}"])
    assert cfg.data.background_rgb == rgb


@pytest.mark.parametrize(
    ("key", "value"),
    [("data.background", "nope"), ("data.background", "[1, 2, 300]"), ("data.fit", "stretch")],
)
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"(?s){key.replace('.', '[.]')}"):
        load_config(ROOT / "configs/train/cgan-digits.yaml", [f"{key}={value}"])


def test_default_data_keys_keep_the_bundle_config_hash():
    cfg = load_config(ROOT / "configs/train/cgan-digits.yaml", ["output=out/x"])
    old = cfg.model_dump(mode="json", exclude={"address", "storage"})
    del old["data"]["background"], old["data"]["fit"]  # what 0.1.0's config had
    del old["scaling"]["threads_per_worker"]  # nor scaling.threads_per_worker (left out while unset)
    want = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
    assert config_hash(cfg, exclude=_hash_exclude(cfg)) == want
    padded = load_config(ROOT / "configs/train/cgan-digits.yaml", ["output=out/x", "data.fit=pad"])
    assert config_hash(padded, exclude=_hash_exclude(padded)) != want
