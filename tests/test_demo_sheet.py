"""The demo's contact sheet goes through genart.images (decode, grid_png) and keeps its bytes. No Ray."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from genart.cli.demo import contact_sheet
from genart.images import encode, grid_png


def test_contact_sheet_bytes(tmp_path):
    out = tmp_path / "out"
    (out / "metadata").mkdir(parents=True)
    (out / "images/00000").mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8)
    paths = [f"images/00000/{i:010d}.png" for i in range(12)]
    for im, p in zip(imgs, paths, strict=True):
        (out / p).write_bytes(encode(im))
    order = [5, 0, 11, 3, 1, 2, 4, 6, 7, 8, 9, 10]  # rows in any order: the sheet is in id order
    pq.write_table(
        pa.table({"id": order, "path": [paths[i] for i in order]}), out / "metadata/part-00000.parquet"
    )
    target = str(tmp_path / "sheet.png")
    assert contact_sheet(str(out), target, n=10) == target
    # what the demo wrote before (PIL opened each file, converted to L): the same bytes
    old = [np.asarray(Image.open(out / paths[i]).convert("L"))[..., None] for i in range(10)]
    want = grid_png(np.stack(old), cols=10)
    got = (tmp_path / "sheet.png").read_bytes()
    assert got == want
    sheet = np.asarray(Image.open(io.BytesIO(got)))
    assert sheet.shape == (2 + 10, 2 + 10 * 10) and np.array_equal(sheet[2:10, 2:10], imgs[0][..., 0])
