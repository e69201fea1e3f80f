"""`genart preview`, `genart walk` and `genart gallery` on a small collection: exact sizes, frames, filters."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from PIL import Image

from genart.cli import main
from genart.errors import DataError
from genart.views.preview import contact_sheet

PAD, TILE = 2, 32


def sheet_size(n: int, cols: int = 10) -> tuple[int, int]:
    cols = min(cols, n)
    rows = -(-n // cols)
    return cols * (TILE + PAD) + PAD, rows * (TILE + PAD) + PAD


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_preview_default_out_filters_and_exact_sizes(collection, tmp_path):
    _, _, out = collection
    res = run("preview", str(out))
    assert res.exit_code == 0, res.output
    with Image.open(out / "preview.png") as im:
        assert (im.format, im.size, im.mode) == ("PNG", sheet_size(60), "L")
    target, n = contact_sheet(str(out), str(tmp_path / "c3.png"), class_id=3, limit=4)
    assert n == 4  # class 3 holds ids 3, 13, 23, ...
    with Image.open(target) as im:
        assert im.size == sheet_size(4)
    res = run("preview", str(out), "--out", str(tmp_path / "t.png"), "--trait", "model=nomatch")
    assert res.exit_code == 1 and "no item matches model=nomatch" in res.output
    token = json.loads((out / "tokens" / "0.json").read_text())
    bright = next(a["value"] for a in token["attributes"] if a["trait_type"] == "Brightness")
    res = run(
        "preview",
        str(out),
        "--out",
        str(tmp_path / "b.png"),
        "--trait",
        f"BRIGHTNESS={bright}",
        "--limit",
        "12",
    )
    assert res.exit_code == 0 and "(12 items)" in res.output
    with Image.open(tmp_path / "b.png") as im:
        assert im.size == sheet_size(12)


def test_preview_bad_input(collection, tmp_path):
    _, _, out = collection
    assert run("preview", str(tmp_path)).exit_code == 1  # not an output
    res = run("preview", str(out), "--trait", "brightness")
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
    with pytest.raises(DataError, match="no item matches class 11"):
        contact_sheet(str(out), str(tmp_path / "x.png"), class_id=11)
    assert run("preview", "--help").exit_code == 0


def test_walk_writes_an_animated_gif(collection, tmp_path):
    cfg, _, _ = collection
    res = run(
        "walk",
        cfg.model,
        "--seeds",
        "1",
        "2",
        "3",
        "--class",
        "4",
        "--frames",
        "5",
        "--out",
        str(tmp_path / "w.gif"),
    )
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "w.gif") as im:
        assert (im.format, im.size, im.n_frames, im.info["loop"]) == ("GIF", (128, 128), 15, 0)
    res = run(
        "walk",
        cfg.model,
        "--seeds",
        "7,8",
        "--class",
        "0",
        "--frames",
        "4",
        "--no-loop",
        "--scale",
        "2",
        "--out",
        str(tmp_path / "o.gif"),
    )
    assert res.exit_code == 0 and "(5 frames)" in res.output
    with Image.open(tmp_path / "o.gif") as im:
        assert (im.size, im.n_frames) == ((64, 64), 5)


def test_walk_bad_input(collection, tmp_path):
    cfg, _, _ = collection
    gif = str(tmp_path / "x.gif")
    for args, message in [
        (["--seeds", "1", "2"], "class-conditional: pass --class 0..9"),
        (["--seeds", "1", "--class", "1"], "at least two seeds"),
        (["--seeds", "1", "2", "--class", "10"], "--class 10: not a class"),
        (["--seeds", "a", "--class", "1"], "expected integers"),
    ]:
        res = run("walk", cfg.model, *args, "--out", gif)
        assert res.exit_code == 2 and message in res.output, res.output
    assert run("walk", str(tmp_path / "nobundle"), "--seeds", "1", "2", "--out", gif).exit_code == 1


def test_gallery_html(collection):
    _, _, out = collection
    res = run("gallery", str(out), "--limit", "40")
    assert res.exit_code == 0 and "(40 items)" in res.output
    page = (out / "index.html").read_text()
    assert "<title>Tiny Digits</title>" in page and "</span> of 40 items shown (the first 40 of 60)" in page
    data = json.loads(re.search(r'<script type="application/json" id="items">(.*?)</script>', page).group(1))
    srcs = [row[1] for row in data["items"]]
    assert [row[0] for row in data["items"]] == list(range(40))
    assert srcs == [f"images/{i // 25:05d}/{i:010d}.png" for i in range(40)]
    assert all((out / s).is_file() for s in srcs)
    assert re.findall(r'<select data-trait="([^"]+)"', page) == [
        "Class",
        "Model",
        "Background",
        "Dominant colour",
        "Brightness",
    ]
    assert '<option value="3">3 (4)</option>' in page
