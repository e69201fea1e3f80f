"""Synthetic labelled images for the judge's tests: coloured shapes drawn with PIL, and a minimal reader of
class folders (root/<class>/<image>.png) standing in for genart.data.read until it lands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("disc", "square", "triangle")
COLOURS = ((220, 40, 40), (40, 160, 60), (40, 70, 220))


def shape_image(kind: int, rng: np.random.Generator, size: int = 32, channels: int = 3) -> np.ndarray:
    """One uint8 (size, size, channels) image: shape `kind` in its colour (jittered), position and size
    jittered, on a noisy light background."""
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = size * rng.uniform(0.22, 0.34)
    cx, cy = size / 2 + rng.uniform(-size / 8, size / 8, 2)
    colour = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in COLOURS[kind])
    box = (cx - r, cy - r, cx + r, cy + r)
    if SHAPES[kind] == "disc":
        d.ellipse(box, fill=colour)
    elif SHAPES[kind] == "square":
        d.rectangle(box, fill=colour)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    arr = np.asarray(im, dtype=np.int16) + rng.integers(-8, 9, (size, size, 3))
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr.mean(-1, keepdims=True).astype(np.uint8) if channels == 1 else arr


def shapes_dataset(
    per_class: int, seed: int = 0, size: int = 32, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (3 * per_class, size, size, channels), labels int64) in class order."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SHAPES)), per_class).astype(np.int64)
    return np.stack([shape_image(int(k), rng, size, channels) for k in labels]), labels


def write_class_folders(root: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> Path:
    for i, (im, y) in enumerate(zip(images, labels)):
        folder = root / names[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(folder / f"{i:04d}.png")
    return root


def read_class_folders(root: Path, channels: int = 3):
    """The minimal reader: sorted class folders, their PNGs in name order -> (images, labels, class names)."""
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    images, labels = [], []
    for y, name in enumerate(names):
        for f in sorted((root / name).glob("*.png")):
            with Image.open(f) as im:
                arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
            images.append(arr[..., None] if channels == 1 else arr)
            labels.append(y)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names
