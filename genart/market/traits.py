"""Computed traits of an item, from its pixels only: Background, Dominant colour, Brightness. No IO."""

from __future__ import annotations

import re

import numpy as np

from genart.images import flatten_alpha

# Named palette for the colour traits: five greys (grayscale models still get varied traits) and the
# basic hues. Each pixel takes the nearest name (Euclidean distance in RGB).
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "dark grey": (64, 64, 64),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "white": (255, 255, 255),
    "red": (220, 30, 30),
    "maroon": (128, 0, 0),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 30),
    "olive": (128, 128, 0),
    "green": (30, 170, 60),
    "teal": (0, 128, 128),
    "cyan": (0, 220, 230),
    "blue": (30, 70, 220),
    "navy": (0, 0, 128),
    "purple": (128, 0, 160),
    "magenta": (230, 40, 200),
    "pink": (255, 170, 200),
    "brown": (140, 80, 30),
}
_NAMES = list(PALETTE)
_RGB = np.asarray(list(PALETTE.values()), dtype=np.float32)
# Brightness: upper bounds (exclusive) of mean luminance 0..255 for each bucket.
BRIGHTNESS = ((40, "very dark"), (85, "dark"), (170, "medium"), (215, "bright"), (256, "very bright"))
TRAIT_SIDE = 64  # colour traits look at most 64x64 sampled pixels per image
SUBJECT_SHARE = 0.02  # at least this share of pixels differ from the background for a subject colour


def _brightness(mean_luma: float) -> str:
    return next(name for bound, name in BRIGHTNESS if mean_luma < bound)


def pixel_traits(images: np.ndarray) -> list[dict[str, str]]:
    """uint8 (N, H, W, C) -> per image {"Background", "Dominant colour", "Brightness"} (C = 1, 3 or 4; RGBA
    is judged composited over white). Raises ValueError for another shape or dtype."""
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[3] not in (1, 3, 4):
        raise ValueError(
            f"expected uint8 (N, H, W, C) images with C in 1, 3, 4; got {images.dtype} {images.shape}"
        )
    # RGBA: traits of the piece as shown on a white page; the colour under transparent pixels never counts
    rgb = flatten_alpha(images, background=255) if images.shape[3] == 4 else images
    rgb = rgb if rgb.shape[3] == 3 else np.repeat(rgb, 3, axis=3)
    luma = rgb.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    means = luma.reshape(len(images), -1).mean(axis=1)
    step = max(1, -(-max(images.shape[1:3]) // TRAIT_SIDE))
    small = rgb[:, ::step, ::step].astype(np.float32)
    n, h, w, _ = small.shape
    dist = ((small.reshape(n, h * w, 1, 3) - _RGB[None, None]) ** 2).sum(axis=3)
    idx = dist.argmin(axis=2).reshape(n, h, w)
    border = np.zeros((h, w), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    out = []
    for k in range(n):
        background = int(np.bincount(idx[k][border], minlength=len(_NAMES)).argmax())
        subject = idx[k][idx[k] != background]
        # a subject of a few stray pixels is noise: the image is then all background
        big = subject.size >= SUBJECT_SHARE * h * w
        dominant = int(np.bincount(subject, minlength=len(_NAMES)).argmax()) if big else background
        out.append(
            {
                "Background": _NAMES[background],
                "Dominant colour": _NAMES[dominant],
                "Brightness": _brightness(float(means[k])),
            }
        )
    return out


def trait_key(name: str) -> str:
    """Trait names compare loosely: `dominant_colour`, `Dominant colour` and `dominant-colour` are one key."""
    return re.sub(r"[\s_-]+", "_", name.strip().casefold())


def traits_match(traits: dict[str, str], wanted: dict[str, str]) -> bool:
    """Whether an item's flat traits hold every wanted KEY=VALUE (keys and values compared loosely)."""
    have = {trait_key(k): str(v).casefold() for k, v in traits.items()}
    return all(have.get(trait_key(k)) == str(v).strip().casefold() for k, v in wanted.items())
