"""The gallery page in a real headless Chromium (Debian's package): images load, the trait filter works.

tests/tools/ensure_chromium.sh installs Chromium when it is missing (CI calls it; tests/views/conftest.py tries it
once). The curation itself (keep / reject, keyboard, export) is tests/views/test_curation.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from genart.views.gallery import gallery

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


def browse(chromium: str, tmp_path: Path, url: str, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    res = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def grey_pixels(png: Path) -> int:
    """Neutral mid-grey pixels: the tiny model's images; the page itself is cream, white and text."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    neutral = (np.abs(rgb[..., 0] - rgb[..., 1]) <= 2) & (np.abs(rgb[..., 1] - rgb[..., 2]) <= 2)
    return int((neutral & (rgb[..., 1] >= 60) & (rgb[..., 1] <= 200)).sum())


def test_gallery_loads_its_images_and_filters_by_trait(chromium, collection, tmp_path):
    _, _, out = collection
    page, n = gallery(str(out))
    assert n == 60
    url = (out / "index.html").as_uri()

    dom = browse(chromium, tmp_path, url + "#class=3", "--dump-dom")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-images-loaded="6"' in body and 'data-shown="6"' in body, body
    assert re.findall(r'<figure class="card[^"]*" data-id="(\d+)"', dom) == [
        "3",
        "13",
        "23",
        "33",
        "43",
        "53",
    ]
    dom = browse(chromium, tmp_path, url, "--dump-dom")
    assert 'data-images-loaded="60"' in re.search(r"<body[^>]*>", dom).group(0)

    shot = tmp_path / "shot.png"
    browse(chromium, tmp_path, url, f"--screenshot={shot}", "--window-size=1200,900")
    # the same page without its images beside it: broken thumbnails
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(out / "index.html", bare / "index.html")
    broken = tmp_path / "broken.png"
    browse(
        chromium, tmp_path, (bare / "index.html").as_uri(), f"--screenshot={broken}", "--window-size=1200,900"
    )
    with Image.open(shot) as im:
        assert im.size == (1200, 900)
    loaded, missing = grey_pixels(shot), grey_pixels(broken)
    assert loaded > 12 * 160 * 160 * 0.9, (loaded, missing)  # at least two rows of 160px thumbnails
    assert loaded - missing > 12 * 160 * 160 * 0.9 and missing < loaded / 8, (loaded, missing)
    dom = browse(chromium, tmp_path, (bare / "index.html").as_uri(), "--dump-dom")
    assert 'data-images-loaded="0"' in re.search(r"<body[^>]*>", dom).group(0)
