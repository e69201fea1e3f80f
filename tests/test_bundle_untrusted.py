"""Untrusted bundles: model.json is held to the training bounds, its fields agree, its file names stay
inside the bundle, and the weights' safetensors header is compared before any tensor is allocated."""

import hashlib
import json
import struct
import time

import pytest
import torch
from safetensors.torch import save as st_save

import genart
from genart.bundle import load_discriminator, read_meta, save_bundle, save_untrained_bundle
from genart.bundle.store import TINY_DCGAN
from genart.errors import BundleError
from genart.models.registry import build_generator


def _edit_meta(bundle, edit) -> None:
    path = bundle / "model.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _replace_weights(bundle, blob: bytes, name: str = "model.safetensors") -> None:
    """Swap in new weights with their hash forged into model.json (as an attacker would)."""
    (bundle / name).write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()

    def forge(meta):
        if name == "model.safetensors":
            meta["model_id"] = digest
        else:
            meta["discriminator"]["sha256"] = digest

    _edit_meta(bundle, forge)


@pytest.fixture
def bundle(tmp_path):
    save_untrained_bundle(str(tmp_path / "b"), discriminator=True)
    return tmp_path / "b"


def test_image_size_beyond_the_training_bounds_is_refused_with_matching_weights(tmp_path):
    spec = {**TINY_DCGAN, "image_size": 131072}
    save_bundle(str(tmp_path / "b"), build_generator(spec), spec, {"steps": 0})  # weights do match
    with pytest.raises(BundleError) as err:
        genart.load_bundle(str(tmp_path / "b"))
    assert str(err.value) == (
        f"bundle {tmp_path / 'b'}: model.json generator.image_size: Input should be 32, 64, 128 or 256 "
        "(got 131072); re-export the bundle with `genart train`"
    )
    with pytest.raises(BundleError, match="generator.image_size"):
        read_meta(str(tmp_path / "b"))  # drivers planning a job from model.json are refused too


def test_ten_million_classes_are_refused_before_anything_is_allocated(bundle):
    def claim(meta):
        meta["num_classes"] = meta["generator"]["num_classes"] = 10**7
        meta["class_names"] = []

    _edit_meta(bundle, claim)
    start = time.perf_counter()
    with pytest.raises(
        BundleError, match=r"generator\.num_classes: Input should be less than or equal to 10000"
    ):
        genart.load_bundle(str(bundle))
    assert time.perf_counter() - start < 2  # 10^7 x 16 embedding = 640 MB was allocated before


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("image_size", 64, "model.json image_size is 64, but the generator spec says 32"),
        ("num_classes", 3, "model.json num_classes is 3, but the generator spec says 10"),
        ("latent_dim", 99, "model.json latent_dim is 99, but the generator spec says 16"),
        ("arch", "vae", "model.json arch is 'vae', but the generator spec says 'dcgan'"),
        ("channels", 3, "model.json channels is 3, but the generator spec says 1"),
    ],
)
def test_top_level_fields_must_agree_with_the_generator_spec(bundle, key, value, fragment):
    _edit_meta(bundle, lambda meta: meta.__setitem__(key, value))
    with pytest.raises(BundleError, match=fragment):
        genart.load_bundle(str(bundle))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda g: g.update(g_width=4), r"generator\.g_width: Input should be greater than or equal to 8"),
        (lambda g: g.update(latent_dim="16"), r"generator\.latent_dim: Input should be a valid integer"),
        (lambda g: g.update(depth=3), r"generator: unknown keys \['depth'\]"),
        (lambda g: g.pop("g_width"), r"generator: missing keys \['g_width'\]"),
        (lambda g: g.update(arch="gpt"), r"generator\.arch: 'gpt' is not one of dcgan, vae"),
    ],
)
def test_generator_spec_is_held_to_the_train_schema(bundle, edit, fragment):
    _edit_meta(bundle, lambda meta: edit(meta["generator"]))
    with pytest.raises(BundleError, match=fragment):
        genart.load_bundle(str(bundle))


def test_class_names_must_match_num_classes(bundle):
    _edit_meta(bundle, lambda meta: meta.__setitem__("class_names", ["a"] * 3))
    with pytest.raises(BundleError, match=r"class_names: expected 10 names, got \['a', 'a', 'a'\]"):
        genart.load_bundle(str(bundle))


def test_header_shapes_are_compared_before_loading(bundle):
    state = build_generator(TINY_DCGAN).state_dict()
    state["project.0.weight"] = torch.zeros(10**4, 32)  # a shape no TINY_DCGAN has
    _replace_weights(bundle, st_save(state))
    with pytest.raises(BundleError) as err:
        genart.load_bundle(str(bundle))
    assert "model.safetensors: weights do not fit the dcgan generator model.json describes" in str(err.value)
    assert "tensor project.0.weight is F32 [10000, 32], expected F32 [512, 32]" in str(err.value)


def test_dtypes_and_tensor_names_are_compared(bundle):
    state = build_generator(TINY_DCGAN).state_dict()
    _replace_weights(bundle, st_save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}))
    with pytest.raises(BundleError, match=r"tensor \S+ is F16 \[.*\], expected F32"):
        genart.load_bundle(str(bundle))
    state["extra"] = torch.zeros(1)
    _replace_weights(bundle, st_save(state))
    with pytest.raises(BundleError, match=r"tensors missing: \[\], unexpected: \['extra'\]"):
        genart.load_bundle(str(bundle))


def test_a_header_claiming_a_huge_tensor_is_refused_without_allocating(bundle):
    header = json.dumps(
        {"project.0.weight": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4]}}
    )
    blob = struct.pack("<Q", len(header)) + header.encode() + b"\0" * 4
    _replace_weights(bundle, blob)
    with pytest.raises(BundleError, match="weights do not fit the dcgan generator"):
        genart.load_bundle(str(bundle))


def test_a_weights_file_larger_than_its_model_is_refused_unread(bundle):
    with open(bundle / "model.safetensors", "ab") as f:
        f.write(b"\0" * (17 << 20))
    with pytest.raises(
        BundleError, match=r"model.safetensors is \d+ bytes, more than the \d+ its model.json allows"
    ):
        genart.load_bundle(str(bundle))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    generator = build_generator(TINY_DCGAN)
    with torch.no_grad():
        generator.to_image[0].weight[0, 0, 0, 0] = bad
    save_bundle(str(tmp_path / "b"), generator, TINY_DCGAN, {"steps": 0})
    with pytest.raises(
        BundleError, match="model.safetensors: tensor to_image.0.weight holds NaN or Inf values"
    ):
        genart.load_bundle(str(tmp_path / "b"))


def test_non_finite_discriminator_weights_are_refused(bundle):
    from safetensors.torch import load as st_load

    state = st_load((bundle / "discriminator.safetensors").read_bytes())
    state["linear.bias"][0] = float("nan")
    _replace_weights(bundle, st_save(state), "discriminator.safetensors")
    with pytest.raises(BundleError, match="discriminator.safetensors: tensor linear.bias holds NaN or Inf"):
        load_discriminator(str(bundle))


@pytest.mark.parametrize(
    "name",
    [
        "../other/discriminator.safetensors",
        "/etc/passwd",
        "sub/d.safetensors",
        "..",
        "s3://bucket/d",
        "a\\b",
        "",
    ],
)
def test_file_names_in_model_json_are_plain_names_inside_the_bundle(bundle, tmp_path, name):
    other = tmp_path / "other"
    other.mkdir()
    (other / "discriminator.safetensors").write_bytes((bundle / "discriminator.safetensors").read_bytes())
    _edit_meta(bundle, lambda meta: meta["discriminator"].__setitem__("file", name))
    with pytest.raises(
        BundleError, match=r"discriminator\.file: .* is not a plain file name inside the bundle"
    ):
        load_discriminator(str(bundle))
    with pytest.raises(BundleError, match="is not a plain file name"):
        genart.load_bundle(str(bundle))  # the whole description is refused, not only when D is used


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("num_classes", 7, "discriminator.num_classes is 7, but the bundle's num_classes is 10"),
        ("image_size", 64, "discriminator.image_size is 64, but the bundle's image_size is 32"),
        ("d_width", 10**6, r"discriminator\.d_width: Input should be less than or equal to 1024"),
        ("sha256", "abc", "discriminator.sha256: 'abc' is not a sha256 hex digest"),
    ],
)
def test_discriminator_description_is_checked(bundle, key, value, fragment):
    _edit_meta(bundle, lambda meta: meta["discriminator"].__setitem__(key, value))
    with pytest.raises(BundleError, match=fragment):
        load_discriminator(str(bundle))


def test_a_valid_discriminator_still_loads(bundle):
    disc = load_discriminator(str(bundle))
    assert disc(torch.zeros(2, 1, 32, 32), torch.tensor([0, 1])).shape == (2,)


@pytest.mark.parametrize("raw", [b"[]", b"\xff\xfe not utf-8", b'"a string"'])
def test_model_json_that_is_not_an_object_is_refused(bundle, raw):
    (bundle / "model.json").write_bytes(raw)
    with pytest.raises(BundleError, match="model.json is not"):
        genart.load_bundle(str(bundle))


def test_a_trained_bundle_names_every_class_so_it_loads(tmp_path):
    """digits carries 10 names; a 12-class model trained on it exports 12 (the loader requires one per class)."""
    from genart.config import load_config
    from genart.models.registry import build_training_modules
    from genart.training.trainer import export_bundle
    from tests.config.test_configs import ROOT

    cfg = load_config(
        ROOT / "configs/train/cgan-digits.yaml",
        [f"output={tmp_path / 'o'}", "model.num_classes=12", "model.g_width=8", "model.d_width=8"],
    )
    mods = build_training_modules(cfg.model)
    state = {"step": 0, "modules": {"G_ema": mods["G"].state_dict(), "D": mods["D"].state_dict()}}
    uri = export_bundle(cfg, state, 1, {"source": "digits", "class_names": [f"d{i}" for i in range(10)]})
    assert genart.load_bundle(uri).meta["class_names"] == [f"d{i}" for i in range(10)] + ["10", "11"]
    assert load_discriminator(uri)(torch.zeros(1, 1, 32, 32), torch.tensor([11])).shape == (1,)


@pytest.mark.parametrize(
    "extra", ["9" * 5000, "[" * 100_000 + "]" * 100_000], ids=["huge-int", "deep-nesting"]
)
def test_hostile_json_in_model_json_is_refused_in_one_line(bundle, extra):
    raw = (bundle / "model.json").read_text().rstrip()
    (bundle / "model.json").write_text(raw[:-1] + f', "x": {extra}}}')
    with pytest.raises(BundleError) as err:
        read_meta(str(bundle))
    assert str(err.value).startswith(f"bundle {bundle}: model.json is not valid JSON (")
    assert len(str(err.value)) < 300


def test_a_safetensors_header_with_huge_numbers_or_deep_nesting_is_refused(bundle):
    for header in (b'{"x": ' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000):
        blob = struct.pack("<Q", len(header)) + header
        _replace_weights(bundle, blob)
        with pytest.raises(BundleError, match="header is not JSON"):
            genart.load_bundle(str(bundle))
