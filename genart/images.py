"""uint8 (H, W, C) arrays -> PNG / WebP / JPEG bytes, and their sha256. Plain functions (PIL), no IO.

`Batch` is the record one batch of items travels in through a generate job: FilteredDraw -> replica ->
EncodePool -> ShardWrite.add and TokenWriter.write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FORMATS = ("png", "webp", "jpeg")
# PNG level 1: a few percent larger files than the default 6 for these small images, and several
# times faster to encode; pixels are identical (PNG is lossless at every level).
PNG_COMPRESS_LEVEL = 1
# what PIL raises for bytes that are not a readable image, or one over its decompression-bomb bound
DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 (H, W, C), C in 1, 3, 4 -> a PIL image (L, RGB, RGBA); ValueError for anything else."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected a uint8 (H, W, C) array with C in 1, 3, 4; got {image.dtype} {image.shape}"
        )
    if image.shape[2] == 1:
        return Image.fromarray(image[:, :, 0], mode="L")
    return Image.fromarray(image, mode="RGB" if image.shape[2] == 3 else "RGBA")


def encode(image: np.ndarray, fmt: str = "png", quality: int = 90) -> bytes:
    """One uint8 (H, W, C) image -> file bytes of `fmt` (png: lossless, compress level 1; webp: method 4;
    jpeg drops alpha). `quality` (1..100) applies to webp and jpeg. Raises ValueError for an unknown format
    or an array to_pil refuses."""
    pil = to_pil(image)
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "webp":
        pil.save(buf, format="WEBP", quality=quality, method=4)
    elif fmt == "jpeg":
        if pil.mode == "RGBA":
            pil = pil.convert("RGB")
        pil.save(buf, format="JPEG", quality=quality)
    else:
        raise ValueError(f"image format {fmt!r} is not one of {', '.join(FORMATS)}")
    return buf.getvalue()


def sha256_hex(data: bytes) -> str:
    """The sha256 of `data` as 64 lowercase hex digits (the `sha256` column)."""
    return hashlib.sha256(data).hexdigest()


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the image's header; no pixel is decoded. Raises one of DECODE_ERRORS
    when `data` is not an image PIL reads (or declares more pixels than PIL's decompression-bomb bound)."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def decode(data: bytes) -> np.ndarray:
    """File bytes (PNG, WebP, JPEG, ...) -> uint8 (H, W, C): grayscale keeps one channel (C = 1), RGB and
    RGBA keep 3 and 4. Raises one of DECODE_ERRORS when `data` is not an image PIL reads."""
    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


CHECKER_SQUARE = 8  # px: the squares viewers draw behind transparent pixels
CHECKER_SHADES = (255, 204)  # white and light grey


def flatten_alpha(images: np.ndarray, background: int | None = None) -> np.ndarray:
    """uint8 (..., H, W, C) -> the same images as a viewer shows them: C = 4 (RGBA) is composited over a
    white/light-grey checkerboard of CHECKER_SQUARE px (or over the grey level `background`, 0..255) and
    comes back as (..., H, W, 3); C = 1 or 3 is returned unchanged (the same array)."""
    if images.shape[-1] != 4:
        return images
    h, w = images.shape[-3:-1]
    if background is None:
        rows, cols = np.arange(h)[:, None] // CHECKER_SQUARE, np.arange(w)[None, :] // CHECKER_SQUARE
        board = np.where((rows + cols) % 2 == 0, *CHECKER_SHADES).astype(np.float32)[..., None]
    else:
        board = np.full((h, w, 1), background, dtype=np.float32)
    alpha = images[..., 3:].astype(np.float32) / 255.0
    out = images[..., :3].astype(np.float32) * alpha + board * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def grid_png(imgs: np.ndarray, cols: int = 10, pad: int = 2) -> bytes:
    """A contact sheet: uint8 (N, H, W, C) images (C 1 or 3; 4 is shown over a checkerboard, flatten_alpha)
    in rows of `cols`, `pad` black pixels around each, as PNG bytes (PIL's default compression). N >= 1;
    raises ValueError for another shape."""
    imgs = flatten_alpha(imgs)
    n, h, w, c = imgs.shape
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i, im in enumerate(imgs):
        r, q = divmod(i, cols)
        canvas[
            pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w
        ] = im
    buf = io.BytesIO()
    Image.fromarray(canvas[..., 0] if c == 1 else canvas).save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class Batch:
    """One batch of N generated items, all arrays in the same item order (not necessarily id order).

    - ids: int64 (N,), the items' global ids;
    - seeds: int64 (N,), the seed of the draw each image came from (what the metadata stores);
    - class_ids: int (N,) requested classes, or None for an unconditional model;
    - images: uint8 (N, H, W, C), C in 1, 3, 4, the pixels as generated;
    - blobs: the N encoded images (file bytes in the job's format), or None until encoded;
    - score: float32 (N,) quality scores in [0, 1], or None when nothing scores the items;
    - phash: uint64 (N,) 64-bit perceptual hashes (of the stored pixels), or None;
    - judged: bool (N,) whether an independent classifier agrees with class_ids (synthesize's candidates
      of digits models), or None.
    - parent_job: object (N,) of str, the job_id of the output the parents come from (variations jobs), or None;
    - parent_ids: object (N,) of lists of int, each child's parents' ids in that output, or None.

    Frozen: `replace` gives a changed copy; `batch[lo:hi]` slices every per-item field.
    """

    ids: np.ndarray
    seeds: np.ndarray
    class_ids: np.ndarray | None
    images: np.ndarray
    blobs: list[bytes] | None = None
    score: np.ndarray | None = None
    phash: np.ndarray | None = None
    judged: np.ndarray | None = None
    parent_job: np.ndarray | None = None
    parent_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, sl: slice) -> Batch:
        """The items `sl` selects (a slice), every per-item field alike. Raises TypeError for a non-slice."""
        if not isinstance(sl, slice):
            raise TypeError(f"a Batch is sliced with a slice, not {type(sl).__name__}")
        return Batch(**{f.name: _part(getattr(self, f.name), sl) for f in dataclasses.fields(self)})

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of every image, in pixels."""
        return self.images.shape[2], self.images.shape[1]

    def replace(self, **changes) -> Batch:
        """A copy with `changes` (field name -> value)."""
        return dataclasses.replace(self, **changes)


def _part(value, sl: slice):
    return None if value is None else value[sl]
