"""Training reads class folders through the same listing and decode: a conditional model on a folder works,
its bundle names the classes, and model.num_classes that does not match is a config error (real local Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genart.config import load_config
from genart.data.sources import build_dataset
from genart.errors import ConfigError
from genart.training.trainer import train
from tests.data.imgs import png, sticker

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=8",
    "train.batch_size=8",
    "train.log_every=2",
]


def _art(root: Path) -> str:
    for i, name in enumerate(("A & B", "C D")):
        (root / name).mkdir(parents=True)
        for k in range(4):
            (root / name / f"{k}.png").write_bytes(sticker(8, centre=(255, 0, 0) if i == 0 else (0, 0, 255)))
    (root / "C D" / "broken.png").write_bytes(b"junk")
    return str(root)


def _cfg(out, source, *extra):
    sets = [
        f"output={out}",
        f"data.source={source}",
        "model.channels=3",
        "model.num_classes=2",
        *SMALL,
        *extra,
    ]
    return load_config(ROOT / "configs/train/cgan-digits.yaml", sets)


def test_build_dataset_decodes_class_folders_like_read_images(ray_local, tmp_path):
    import genart

    source = _art(tmp_path / "art")
    ds, info = build_dataset(_cfg(tmp_path / "o", source, "data.fit=pad", "data.background=black"))
    rows = ds.take_all()
    got = genart.read_images(source, 32, 3, fit="pad", background="black")
    assert sorted(r["label"] for r in rows) == got.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    by_ray = sorted(np.asarray(r["image"]).tobytes() for r in rows)
    assert by_ray == sorted(im.tobytes() for im in got.images)  # the same pixels, byte for byte
    assert info["class_names"] == ["A & B", "C D"] and (info["count"], info["skipped"]) == (8, 1)
    assert info["report"]["skipped"] == {"not_an_image": 1} and info["report"]["converted"] == {"alpha": 8}
    assert got.images[0, 0, 0].tolist() == [0, 0, 0]  # transparent corner on the black background


def test_a_conditional_gan_on_class_folders_names_its_classes(ray_local, tmp_path):
    source = _art(tmp_path / "art")
    res = train(_cfg(tmp_path / "o", source, "train.steps=2", "train.checkpoint_every=2"))
    assert res.steps == 2
    meta = json.loads((tmp_path / "o" / "model" / "model.json").read_text())
    assert meta["class_names"] == ["A & B", "C D"] and meta["num_classes"] == 2
    assert meta["training"]["data"]["report"]["per_class"] == {"A & B": 4, "C D": 4}


def test_num_classes_that_does_not_match_the_folders_is_refused(ray_local, tmp_path):
    with pytest.raises(
        ConfigError, match=r"^model.num_classes is 10 but data.source .* has 2 classes \('A & B', 'C D'\)"
    ):
        train(_cfg(tmp_path / "o", _art(tmp_path / "art"), "model.num_classes=10"))
    assert not (tmp_path / "o" / "model").exists()


def test_grey_pngs_decode_as_before(ray_local, tmp_path):
    """A plain L image (no alpha, no EXIF) gives the same bytes as 0.1.0's decoder: crop, then bicubic."""
    from PIL import Image

    a = (np.arange(48 * 40) % 251).astype(np.uint8).reshape(40, 48)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "g.png").write_bytes(png(a))
    ds, _ = build_dataset(_cfg(tmp_path / "o", tmp_path / "flat", "model.channels=1", "model.num_classes=0"))
    old = np.asarray(Image.fromarray(a).crop((4, 0, 44, 40)).resize((32, 32), Image.BICUBIC))
    assert np.array_equal(ds.take_all()[0]["image"][..., 0], old)


def test_build_dataset_reads_a_path_only_parquet_on_s3(ray_local, s3_bucket):
    from tests.data.test_parquet import _path_only

    cfg = _cfg("unused", _path_only(s3_bucket), "model.channels=1")
    ds, info = build_dataset(cfg)
    rows = sorted((int(r["label"]), int(r["image"][0, 0, 0])) for r in ds.take_all())
    assert rows == [(0, 100), (1, 200)] and info["class_names"] == ["Flags", "Food & Drink"]
