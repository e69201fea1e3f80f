"""Bytes -> fixed-size uint8 arrays. Per-item problems become data (`ok` = False), never exceptions."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


def decode_image(data: bytes, image_size: int, channels: int) -> np.ndarray | None:
    """Decode, convert to L or RGB, centre-crop to square and resize; None when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            side = min(w, h)
            img = img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
            img = img.resize((image_size, image_size), Image.BICUBIC)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return arr[..., None] if channels == 1 else arr


def decode_batch(
    batch: dict, image_size: int, channels: int, image_column: str, label_column: str | None
) -> dict:
    """A Ray Data batch of raw bytes -> {'image': uint8 (N,S,S,C), 'label': int64, 'ok': bool}."""
    raw = batch[image_column]
    images = np.zeros((len(raw), image_size, image_size, channels), dtype=np.uint8)
    ok = np.zeros(len(raw), dtype=bool)
    for i, item in enumerate(raw):
        if isinstance(item, dict):  # the Hugging Face Image struct {bytes, path}
            item = item.get("bytes")
        arr = decode_image(item, image_size, channels) if item is not None else None
        if arr is not None:
            images[i], ok[i] = arr, True
    labels = (
        np.asarray(batch[label_column], dtype=np.int64)
        if label_column and label_column in batch
        else np.zeros(len(raw), np.int64)
    )
    return {"image": images, "label": labels, "ok": ok}
