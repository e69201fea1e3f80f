"""data.source folders are literal: a folder named with `[ ]`, spaces, &, #, % or non-ASCII is read as that
folder (local and S3), never as a pattern; a glob that matches nothing literal still works."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from genart.config.train import TrainConfig
from genart.data.sources import build_dataset
from genart.storage.fs import get_fs

NAME = "cls [1] & #2 %20 grüße"


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _cfg(source: str) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "kind": "train",
            "output": "unused",
            "model": {"arch": "dcgan", "image_size": 32, "channels": 1, "num_classes": 0},
            "data": {"source": source},
        }
    )


def _fill(base: str) -> None:
    """Three images in NAME, one in `cls1` (what `cls [1]` would glob to if read as a pattern)."""
    fs, root = get_fs(base)
    for folder, values in ((NAME, (10, 20, 30)), ("cls1", (200,))):
        fs.makedirs(f"{root}/{folder}", exist_ok=True)
        for v in values:
            fs.pipe_file(f"{root}/{folder}/img {v}.png", _png(v))


@pytest.fixture(params=["local", "s3"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("s3_bucket")


def test_a_folder_with_hostile_characters_is_read_literally(ray_local, base):
    _fill(base)
    ds, info = build_dataset(_cfg(f"{base}/{NAME}"))
    means = sorted(round(float(r["image"].mean())) for r in ds.take_all())
    assert info["count"] == 3 and info["skipped"] == 0
    assert len(means) == 3 and max(means) < 100  # none of cls1's bright image


def test_a_glob_still_selects_files_when_nothing_literal_is_there(ray_local, tmp_path):
    _fill(str(tmp_path))
    _, info = build_dataset(_cfg(f"{tmp_path}/cls1/*.png"))
    assert info["count"] == 1
