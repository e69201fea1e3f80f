"""Bytes -> fixed-size uint8 arrays, decoded as an image viewer shows them. Pure PIL/numpy, no IO, no Ray.

Order: open (header-only size check) -> first frame -> load -> EXIF orientation -> 16-bit/I/F to 8 bits ->
RGBA when the image has any transparency (RGBA, LA, PA, P or RGB with tRNS), else RGB (CMYK, YCbCr, L, 1) ->
fit to a square (`crop`: centre crop; `pad`: transparent margins) -> C=3/1: composite onto the background
(C=1 then luminance); C=4: keep straight alpha, the RGB under alpha 0 set to the background. Pillow resizes
RGBA premultiplied, so colours hidden under alpha 0 never bleed into visible pixels.

Per-item problems are data: `decode_image` raises `Skipped(reason)`, `decode_batch` turns it into the
`ok`/`reason` columns. Reasons: not_an_image, corrupt, too_large, unsupported (a mode that has no RGB
conversion), missing_file, unreadable_uri. Notes on
converted files: exif_rotated, alpha, 16bit, float, palette, cmyk, animated_first_frame.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genart.errors import ImageSkipped as Skipped

SKIP_REASONS = ("not_an_image", "corrupt", "too_large", "unsupported", "missing_file", "unreadable_uri")
_TRANSPARENT_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


@dataclass(frozen=True)
class DecodeSpec:
    """How every image of a source is decoded: output side `image_size`, `channels` (1 grey, 3 RGB, 4 RGBA),
    `fit` (crop | pad), `background` RGB (what transparency and pad margins become), `max_pixels` (larger
    images are skipped as too_large from their header, before any pixel is decoded)."""

    image_size: int
    channels: Literal[1, 3, 4]
    fit: Literal["crop", "pad"] = "crop"
    background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int = 100_000_000


def decode_image(data: bytes, spec: DecodeSpec) -> tuple[np.ndarray, tuple[str, ...]]:
    """Image file bytes -> (uint8 (S, S, C) array, notes on what was converted). Raises Skipped."""
    img, notes = _open(data, spec.max_pixels, 2 * spec.image_size)
    img = _fit(img, spec)
    return _to_array(img, spec), tuple(notes)


def _open(data: bytes, max_pixels: int, draft: int) -> tuple[Image.Image, list[str]]:
    """bytes -> RGB or RGBA image upright, in 8 bits; a JPEG at least `draft` px on its short side is decoded
    at a reduced scale (DCT scaling), still at least `draft` px. Raises Skipped."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > max_pixels:
                raise Skipped("too_large", f"{img.width}x{img.height}")
            if getattr(img, "is_animated", False):
                notes.append("animated_first_frame")
                img.seek(0)
            if img.format == "JPEG":  # DCT scaling: a 12 MP photo decodes at a fraction of its size
                img.draft(img.mode, (draft, draft))
            img.load()
    except Skipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Skipped("too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise Skipped("not_an_image") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Skipped("corrupt", str(exc)) from exc
    try:
        return _upright_8bit(img, notes)
    except (OSError, ValueError, SyntaxError) as exc:  # a mode Pillow cannot convert (LAB, HSV...), bad EXIF
        raise Skipped("unsupported", f"{img.mode}: {exc}") from exc


def _upright_8bit(img: Image.Image, notes: list[str]) -> tuple[Image.Image, list[str]]:
    """EXIF orientation applied, 8 bits, RGBA when the image has any transparency else RGB; `notes` grows."""
    if img.getexif().get(0x0112, 1) in range(2, 9):  # 2..8 flip or rotate; other values mean nothing
        img = ImageOps.exif_transpose(img)
        notes.append("exif_rotated")
    img = _to_8bit(img, notes)
    if img.mode == "CMYK":
        notes.append("cmyk")  # Pillow reads CMYK JPEG Adobe-inverted ("CMYK;I"), as Photoshop writes it
    if img.mode == "P":
        notes.append("palette")
    with warnings.catch_warnings():  # P + tRNS as bytes warns "should be converted to RGBA": we do
        warnings.simplefilter("ignore", UserWarning)
        has_alpha = img.mode in _TRANSPARENT_MODES or img.has_transparency_data
        img = img.convert("RGBA" if has_alpha else "RGB")
    if has_alpha:
        notes.append("alpha")
    return img, notes


def _to_8bit(img: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit (I;16*), 32-bit integer (I) and float (F) grey -> L by scaling, never by clipping."""
    if img.mode.startswith("I"):
        a = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or (a.size and a.max() > 255):
            a = a / 257.0
            notes.append("16bit")
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img).astype(np.float64))
        scale = 255.0 if a.size and a.max() <= 1.0 else 1.0  # floats in [0, 1] or in [0, 255]
        notes.append("float")
        return Image.fromarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8), "L")
    return img


def _fit(img: Image.Image, spec: DecodeSpec) -> Image.Image:
    """crop: the centred square of the short side, resized; pad: the whole image, resized to fit, with
    transparent margins (they take the background colour later)."""
    size = spec.image_size
    if spec.fit == "pad":
        return ImageOps.pad(img.convert("RGBA"), (size, size), Image.BICUBIC, color=(0, 0, 0, 0))
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    return img.resize((size, size), Image.BICUBIC)


def _to_array(img: Image.Image, spec: DecodeSpec) -> np.ndarray:
    """RGB/RGBA image -> uint8 (S, S, C): C=4 straight alpha (RGB under alpha 0 = background); C=3/1
    composited onto the background."""
    if spec.channels == 4:
        arr = np.array(img.convert("RGBA"))
        arr[arr[..., 3] == 0, :3] = spec.background
        return arr
    if img.mode == "RGBA":
        back = Image.new("RGBA", img.size, (*spec.background, 255))
        img = Image.alpha_composite(back, img)
    if spec.channels == 1:
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_batch(batch: dict, spec: DecodeSpec) -> dict:
    """{'data': bytes or None per item, 'reason': '' or a reason already found (missing_file, ...), 'label',
    'name'} -> {'image': uint8 (N,S,S,C), 'label': int64, 'ok': bool, 'reason': str, 'notes': str
    (comma-joined), 'name': str}. Never raises for one bad item."""
    raw = batch["data"]
    n = len(raw)
    images = np.zeros((n, spec.image_size, spec.image_size, spec.channels), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    reasons = [str(r) for r in batch["reason"]]
    notes = [""] * n
    for i, item in enumerate(raw):
        if reasons[i]:
            continue
        try:
            images[i], found = decode_image(bytes(item), spec)
        except Skipped as exc:
            reasons[i] = exc.reason
            continue
        ok[i], notes[i] = True, ",".join(found)
    return {
        "image": images,
        "label": np.asarray(batch["label"], dtype=np.int64),
        "ok": ok,
        "reason": np.asarray(reasons, dtype=object),
        "notes": np.asarray(notes, dtype=object),
        "name": np.asarray([str(x) for x in batch["name"]], dtype=object),
    }
