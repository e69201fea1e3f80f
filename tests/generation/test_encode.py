"""Encoding: PNG is lossless, WebP/JPEG close; bytes hash to sha256; bad input is refused. No Ray."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from genart.images import decode, encode, sha256_hex


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 32 * 32).reshape(32, 32).astype(np.uint8)
    gray = np.stack([np.roll(smooth, k, axis=1)[:, :, None] for k in range(3)])
    rgb = rng.integers(0, 256, size=(2, 16, 24, 3), dtype=np.uint8)
    return gray, rgb


def test_png_round_trip_is_exact(images):
    gray, rgb = images
    for arr in (*gray, *rgb):
        data = encode(arr, "png")
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(decode(data), arr)
    with Image.open(io.BytesIO(encode(gray[0]))) as im:
        assert (im.mode, im.size) == ("L", (32, 32))
    with Image.open(io.BytesIO(encode(rgb[0]))) as im:
        assert (im.mode, im.size) == ("RGB", (24, 16))


@pytest.mark.parametrize("fmt,magic", [("webp", b"RIFF"), ("jpeg", b"\xff\xd8")])
def test_lossy_formats_are_close(images, fmt, magic):
    gray, _ = images
    data = encode(gray[0], fmt, quality=95)
    assert data.startswith(magic)
    back = decode(data)
    assert back.shape[:2] == (32, 32)
    diff = np.abs(back[:, :, :1].astype(int) - gray[0].astype(int))
    assert diff.mean() < 4
    assert len(encode(gray[0], fmt, quality=10)) < len(encode(gray[0], fmt, quality=95))


def test_deterministic_bytes_and_sha256(images):
    gray, _ = images
    blobs = [encode(img, "png") for img in gray]
    assert len(blobs) == 3 and blobs[0] != blobs[1]
    assert blobs == [encode(img, "png") for img in gray]  # deterministic bytes
    assert sha256_hex(blobs[0]) == hashlib.sha256(blobs[0]).hexdigest()


def test_bad_input_is_refused(images):
    with pytest.raises(ValueError, match="uint8"):
        encode(np.zeros((4, 4, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="not one of"):
        encode(images[0][0], "gif")
