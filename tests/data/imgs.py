"""Test images made in memory: each encodes one pitfall of real collections (helpers, no tests here)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def enc(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    return enc(Image.fromarray(np.asarray(arr), mode) if mode else Image.fromarray(np.asarray(arr)))


def sticker(size: int = 4, hidden=(255, 255, 0), centre=(255, 0, 0)) -> bytes:
    """RGBA size x size: alpha 0 everywhere hiding `hidden`, an opaque `centre` 2x2 block."""
    a = np.zeros((size, size, 4), np.uint8)
    a[..., :3] = hidden
    c = size // 2
    a[c - 1 : c + 1, c - 1 : c + 1] = (*centre, 255)
    return png(a, "RGBA")


def oriented(orientation: int, fmt: str = "JPEG") -> bytes:
    """Stored 32 wide x 16 high, left half red, right half blue, with an EXIF Orientation tag."""
    a = np.zeros((16, 32, 3), np.uint8)
    a[:, :16] = (255, 0, 0)
    a[:, 16:] = (0, 0, 255)
    ex = Image.Exif()
    ex[0x0112] = orientation
    kw = {"quality": 95} if fmt == "JPEG" else {}
    return enc(Image.fromarray(a), fmt, exif=ex, **kw)


def png16(arr: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 48/64-bit): arr uint16 (H, W, C); color_type 0 grey,
    2 RGB, 4 grey+alpha, 6 RGBA."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def animated(fmt: str) -> bytes:
    """Three 8x8 frames: red, green, blue."""
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    kw = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        kw["lossless"] = True
    return enc(frames[0], fmt, **kw)


def solid(colour, size: int = 8, mode: str = "RGB") -> bytes:
    return enc(Image.new(mode, (size, size), colour))
