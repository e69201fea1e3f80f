"""model.channels 4 (RGBA): a tiny bundle trains a few steps (training/loop, no Ray), exports, and its
generated PNG and WebP files keep the generator's alpha channel exactly; JPEG with an RGBA bundle is a config
error (exit 2, one line) before anything is written; previews show RGBA over a checkerboard."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

import genart
from genart.bundle import read_meta, save_untrained_bundle
from genart.cli import main
from genart.config import load_config
from genart.config.generate import GenerateConfig
from genart.generation.plan import Plan
from genart.generation.replica import GeneratorReplica
from genart.images import flatten_alpha, grid_png
from genart.training.loop import build_state, cached_batches, run_training
from genart.training.trainer import export_bundle

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "cgan-attention": [
        "model.num_classes=2",
        "model.attention=true",
        "train.augment=color,translation,cutout",
    ],
    "gan": ["model.num_classes=0", "train.augment=translation"],
    "cvae": ["model.num_classes=2"],
}


def _rgba_images(n: int = 32, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Stickers: an opaque coloured disc on a fully transparent background (hidden RGB white), 2 classes."""
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (side / 3) ** 2
    images = np.zeros((n, side, side, 4), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[..., :3] = 255
    images[:, disc, 3] = 255
    for i in range(n):
        images[i][disc, :3] = (220, 30, 30) if labels[i] == 0 else (30, 30, 220)
    return images, labels


def _train(tmp_path, name: str) -> str:
    base = "vae-digits.yaml" if name == "cvae" else "cgan-digits.yaml"
    widths = ["model.width=8"] if name == "cvae" else ["model.g_width=8", "model.d_width=8"]
    overrides = [
        "model.channels=4",
        "data.source=stickers",
        f"output={tmp_path / 'run'}",
        "train.steps=3",
        "train.log_every=1",
        "train.batch_size=8",
        *widths,
        *MODELS[name],
    ]
    cfg = load_config(ROOT / "configs/train" / base, overrides)
    images, labels = _rgba_images()
    batches = cached_batches(iter([{"image": images, "label": labels}]), 8, 0, 0)
    state = build_state(cfg, torch.device("cpu"))
    before = {k: v.clone() for k, v in state.exported.state_dict().items()}
    run_training(state, batches, torch.device("cpu"), 1, lambda *a: None)
    assert state.step == 3
    assert any(not torch.equal(before[k], v) for k, v in state.exported.state_dict().items())
    info = {"source": "stickers", "class_names": ["red", "blue"] if cfg.model.num_classes else None}
    return export_bundle(cfg, state.state_dict(), 1, info)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rgba_bundle_trains_and_generates_transparent_png_and_webp(tmp_path, name):
    bundle_uri = _train(tmp_path, name)
    meta = read_meta(bundle_uri)
    assert meta["channels"] == 4 and meta["generator"]["channels"] == 4
    bundle = genart.load_bundle(bundle_uri)
    for fmt in ("png", "webp"):
        out = tmp_path / fmt
        cfg = GenerateConfig.model_validate(
            {
                "kind": "generate",
                "model": bundle_uri,
                "output": str(out),
                "count": 6,
                "seed": 7,
                "shard_size": 6,
                "image": {"format": fmt},
            }
        )
        plan = Plan.from_config(cfg, meta["num_classes"])
        GeneratorReplica(cfg, "job", meta["model_id"]).run_shard(plan.shard(0))
        rows = pq.read_table(out / "metadata" / "part-00000.parquet").to_pylist()
        assert len(rows) == 6
        for row in rows:
            with Image.open(out / row["path"]) as im:
                assert (im.format, im.mode, im.size) == (fmt.upper(), "RGBA", (32, 32))
                stored = np.asarray(im)
            cls = [row["class_id"]] if meta["num_classes"] else None
            expected = bundle.generate([row["seed"]], cls)[0]
            assert expected.shape == (32, 32, 4)
            assert np.array_equal(stored[..., 3], expected[..., 3]), f"{fmt} item {row['id']}: alpha differs"
            if fmt == "png":
                assert np.array_equal(stored, expected)


def _generate_config(tmp_path, bundle: str, fmt: str) -> str:
    data = yaml.safe_load((ROOT / "configs/generate/digits.yaml").read_text())
    data.update(model=bundle, output=str(tmp_path / "out"), image={"format": fmt})
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_jpeg_with_an_rgba_bundle_exits_2_naming_image_format(tmp_path):
    spec = {"arch": "dcgan", "image_size": 32, "channels": 4, "latent_dim": 8, "num_classes": 0, "g_width": 8}
    bundle = str(tmp_path / "bundle")
    save_untrained_bundle(bundle, {**spec, "attention": False})
    result = CliRunner().invoke(main, ["generate", _generate_config(tmp_path, bundle, "jpeg")])
    assert result.exit_code == 2, result.output
    assert result.output == (
        "error: image.format: jpeg has no alpha channel, but this model makes RGBA images (model.channels 4); "
        "use image.format: png or webp to keep the transparency\n"
    )
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_flatten_alpha_shows_rgba_over_a_checkerboard():
    img = np.zeros((16, 16, 4), dtype=np.uint8)
    img[..., :3] = (10, 200, 30)
    img[0, 0, 3] = 0  # transparent: the board's white square
    img[0, 8, 3] = 0  # transparent: the next square, light grey
    img[1, 1, 3] = 255  # opaque: its own colour
    img[1, 2, 3] = 128  # half: a mix of both
    flat = flatten_alpha(img)
    assert flat.shape == (16, 16, 3) and flat.dtype == np.uint8
    assert flat[0, 0].tolist() == [255, 255, 255]
    assert flat[0, 8].tolist() == [204, 204, 204]
    assert flat[1, 1].tolist() == [10, 200, 30]
    assert flat[1, 2].tolist() == [round(c * 128 / 255 + 255 * 127 / 255) for c in (10, 200, 30)]
    rgb = img[..., :3].copy()
    assert flatten_alpha(rgb) is rgb  # RGB and grey pass through
    with Image.open(io.BytesIO(grid_png(img[None], cols=1, pad=0))) as sheet:
        assert sheet.mode == "RGB" and np.array_equal(np.asarray(sheet), flat)


@pytest.mark.parametrize("base", ["cgan-digits.yaml", "vae-digits.yaml"])
def test_config_and_bundle_bounds_allow_rgba_and_256(base):
    from genart.bundle.check import check_spec
    from genart.errors import ConfigError
    from genart.models.registry import generator_spec

    cfg = load_config(ROOT / "configs/train" / base, ["model.channels=4", "model.image_size=256"])
    assert (cfg.model.channels, cfg.model.image_size) == (4, 256)
    spec = generator_spec(cfg.model)
    assert check_spec(spec, "model.json generator") == spec
    for key, value, allowed in (("channels", 2, "1, 3 or 4"), ("image_size", 512, "32, 64, 128 or 256")):
        with pytest.raises(ConfigError) as err:
            load_config(ROOT / "configs/train" / base, [f"model.{key}={value}"])
        assert f"model.{key}: Input should be {allowed} (got {value})" in str(err.value)
        with pytest.raises(ValueError, match=f"model.json generator.{key}: Input should be {allowed}"):
            check_spec({**spec, key: value}, "model.json generator")


def test_dedupe_hash_ignores_the_colour_hidden_under_transparent_pixels():
    from genart.filters.score import phash64

    a, _ = _rgba_images(1, 32)
    b = a.copy()
    hidden = b[0, ..., 3] == 0
    b[0, hidden, :3] = np.random.default_rng(0).integers(0, 256, size=(int(hidden.sum()), 3), dtype=np.uint8)
    assert (
        phash64(np.concatenate([a, b])).tolist()
        == phash64(flatten_alpha(np.concatenate([a, a]), 255)).tolist()
    )
    assert phash64(a[..., :3].copy()) != phash64(b[..., :3].copy())  # the hidden noise would count in RGB


def test_traits_of_an_rgba_sticker_are_those_shown_over_white():
    from genart.market.traits import pixel_traits

    sticker, _ = _rgba_images(1, 32)
    sticker[0, ..., :3][sticker[0, ..., 3] == 0] = (0, 0, 0)  # hidden black under the transparent background
    assert pixel_traits(sticker)[0] == {
        "Background": "white",
        "Dominant colour": "red",
        "Brightness": "bright",
    }
    assert pixel_traits(sticker)[0] == pixel_traits(flatten_alpha(sticker, 255))[0]
    assert pixel_traits(sticker[..., :3].copy())[0]["Background"] == "black"


def test_preview_sheet_and_walk_gif_show_rgba_over_the_checkerboard():
    from genart.views.preview import _same_shape
    from genart.views.walk import gif_bytes

    rgba = np.zeros((2, 16, 16, 4), dtype=np.uint8)
    rgba[..., :3] = (0, 0, 255)  # hidden blue under alpha 0 ...
    rgba[:, 4:12, 4:12] = (255, 0, 0, 255)  # ... around an opaque red square
    sheet = _same_shape([rgba[0], np.full((16, 16, 1), 7, dtype=np.uint8)])
    assert sheet.shape == (2, 16, 16, 3)
    assert sheet[0, 0, 0].tolist() == [255, 255, 255] and sheet[0, 0, 8].tolist() == [204, 204, 204]
    assert sheet[0, 5, 5].tolist() == [255, 0, 0] and sheet[1, 0, 0].tolist() == [7, 7, 7]
    with Image.open(io.BytesIO(gif_bytes(rgba))) as gif:
        frame = np.asarray(gif.convert("RGB"))
    assert frame[0, 0].tolist() == [255, 255, 255] and frame[0, 8].tolist() == [204, 204, 204]
    assert frame[5, 5].tolist() == [255, 0, 0]
