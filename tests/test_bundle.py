import json

import numpy as np
import pytest

import genart
from genart.errors import BundleError
from tests.conftest import make_tiny_bundle


def test_round_trip_and_determinism(tmp_path):
    meta = make_tiny_bundle(str(tmp_path / "b"))
    bundle = genart.load_bundle(str(tmp_path / "b"))
    for key in (
        "arch",
        "image_size",
        "channels",
        "latent_dim",
        "num_classes",
        "model_id",
        "genart_version",
        "training",
    ):
        assert key in bundle.meta
    assert bundle.model_id == meta["model_id"]
    a = bundle.generate([1, 2, 3], class_ids=[0, 1, 9])
    b = genart.load_bundle(str(tmp_path / "b")).generate([3, 2, 1], class_ids=[9, 1, 0])
    assert a.dtype == np.uint8 and a.shape == (3, 32, 32, 1)
    assert np.array_equal(a, b[::-1])  # per-seed latents: order and batching do not matter


def test_unconditional_vae_bundle(tmp_path):
    make_tiny_bundle(str(tmp_path / "v"), num_classes=0, arch="vae")
    imgs = genart.load_bundle(str(tmp_path / "v")).generate(np.arange(4))
    assert imgs.shape == (4, 32, 32, 1)


def test_missing_file(tmp_path):
    make_tiny_bundle(str(tmp_path / "b"))
    (tmp_path / "b" / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="has no model.safetensors"):
        genart.load_bundle(str(tmp_path / "b"))
    with pytest.raises(BundleError, match="has no model.json"):
        genart.load_bundle(str(tmp_path / "nothing-here"))


def test_tampered_weights_are_refused(tmp_path):
    make_tiny_bundle(str(tmp_path / "b"))
    w = tmp_path / "b" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="the weights were changed or truncated"):
        genart.load_bundle(str(tmp_path / "b"))


def test_foreign_layout_is_refused(tmp_path):
    make_tiny_bundle(str(tmp_path / "b"))
    meta_path = tmp_path / "b" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["generator"]["g_width"] = 16  # the weights were saved for g_width 8
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="weights do not fit the dcgan generator"):
        genart.load_bundle(str(tmp_path / "b"))


def test_pickle_is_never_loaded(tmp_path):
    import torch

    make_tiny_bundle(str(tmp_path / "b"))
    # a pickle in place of the safetensors file (with its hash forged into model.json) is still refused
    w = tmp_path / "b" / "model.safetensors"
    torch.save({"x": torch.zeros(1)}, w)
    import hashlib

    meta_path = tmp_path / "b" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["model_id"] = hashlib.sha256(w.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="weights do not fit"):
        genart.load_bundle(str(tmp_path / "b"))


def test_bundle_on_s3(s3_bucket):
    uri = f"{s3_bucket}/models/tiny"
    meta = make_tiny_bundle(uri)
    bundle = genart.load_bundle(uri)
    assert bundle.model_id == meta["model_id"]
    assert bundle.generate([5], [3]).shape == (1, 32, 32, 1)
