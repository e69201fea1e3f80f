"""`genart.read_images`: a source's images as numpy arrays, without Ray. The same listing (catalog.py), fetch
and decode (fetch.py, decode.py) that training's Ray Data pipeline (sources.py) runs, in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from genart.data.catalog import Catalog, list_source
from genart.data.decode import DecodeSpec
from genart.data.fetch import parquet_batch, refs_batch
from genart.data.report import DecodeReport, ReportBuilder
from genart.errors import ConfigError, DataError
from genart.storage.fs import redact

log = logging.getLogger(__name__)
BATCH = 64
FILE_COLUMN = "__genart_file"


@dataclass(frozen=True)
class ImageSet:
    """images: uint8 (N, H, W, C), H = W = image_size, C = channels (1 grey, 3 RGB, 4 RGBA straight alpha);
    labels: int64 (N,), class ids indexing `class_names`, -1 for every image when the source is unlabelled;
    class_names: tuple of str, or None when unlabelled; report: what was skipped and converted."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] | None
    report: DecodeReport


def read_images(
    source: str,
    image_size: int,
    channels: int,
    *,
    fit: str = "crop",
    background="white",
    label_column: str | None = "label",
    image_column: str = "image",
    storage_options: dict | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """Read and decode every image of `source` exactly as `genart train` does, without Ray (`genart.read_images`).

    source: class folders (`root/<class>/<image>`), a folder with `metadata.csv`/`metadata.jsonl` (`file_name`
    + `label_column`), a folder or glob of images (unlabelled), or Parquet (file, folder, glob) whose
    `image_column` holds the Hugging Face Image struct {bytes, path}, bytes or a path; any fsspec URI.
    Decoding: EXIF orientation applied; 16-bit, palette, LA, CMYK, I and F modes converted; the first frame
    of animations; transparency composited onto `background` (a colour name, "#rrggbb" or (r, g, b)), or kept
    as straight alpha when channels == 4 (the RGB under alpha 0 set to the background); `fit` "crop" (centred
    square) or "pad" (whole image, background margins); resized to image_size (bicubic).

    Returns a frozen ImageSet: images uint8 (N, image_size, image_size, channels); labels int64 (N,), ids into
    class_names (-1 when unlabelled); class_names tuple[str, ...] (folder names NFC and sorted, the Parquet's
    ClassLabel names, or sorted string labels) or None; report (.count, .skipped and .converted {reason: n},
    .examples {reason: up to 3 names}, .per_class {name: n}). `limit`: read at most this many listed items
    (the first in listing order). `sample`: read a random subset of at most this many of them (numpy's
    default_rng(seed), in listing order); the others are never fetched or decoded, so memory stays bounded
    for a collection of millions (a Parquet's unpicked rows are read past, not kept).

    Raises genart.errors.ConfigError for a bad image_size, channels (1, 3, 4), fit or background;
    DataError when the source does not exist, lists no image, decodes none, or has unusable labels (an empty
    class folder, a metadata path outside the folder, a label without a name); StorageError when unreachable.
    """
    spec = decode_spec(image_size, channels, fit, background)
    catalog = list_source(source, storage_options, image_column, label_column)
    builder = ReportBuilder(catalog.class_names)
    builder.add_listing(catalog.skipped)
    images, labels = [], []
    if sample is not None and (not isinstance(sample, int) or sample < 1):
        raise ConfigError(f"sample must be a positive integer, got {sample!r}")
    pick = None if sample is None else _pick(catalog, limit, sample, seed)
    for out in iter_decoded(catalog, spec, image_column, label_column, storage_options, limit, pick):
        builder.add_rows(out["ok"], out["reason"], out["notes"], out["name"], out["label"])
        images.append(out["image"][out["ok"]])
        labels.append(out["label"][out["ok"]])
    report = builder.build()
    if report.count == 0:
        raise DataError(no_images_message(source, report))
    log.info(report.line(redact(source)))
    return ImageSet(np.concatenate(images), np.concatenate(labels), catalog.class_names, report)


def decode_spec(image_size: int, channels: int, fit: str, background) -> DecodeSpec:
    """Checked decode parameters. Raises ConfigError naming the parameter."""
    from genart.config.train import parse_colour

    if not isinstance(image_size, int) or not 1 <= image_size <= 4096:
        raise ConfigError(f"image_size must be an integer 1..4096, got {image_size!r}")
    if channels not in (1, 3, 4):
        raise ConfigError(f"channels must be 1 (grey), 3 (RGB) or 4 (RGBA), got {channels!r}")
    if fit not in ("crop", "pad"):
        raise ConfigError(f"fit must be crop or pad, got {fit!r}")
    try:
        rgb = parse_colour(background)
    except ValueError as exc:
        raise ConfigError(f"background {background!r}: {exc}") from exc
    return DecodeSpec(image_size, channels, fit, rgb)


def no_images_message(source: str, report: DecodeReport) -> str:
    """The one-line DataError of a source where nothing decoded, with the skips by reason and examples."""
    line = report.line(redact(source)).partition("; skipped: ")[2]
    return (
        f"data.source {redact(source)} holds no readable images ({report.total_skipped} files, all unreadable); "
        f"skipped: {line or 'nothing listed'}; point it at a folder of images (one subfolder per class) "
        "or Parquet with an image column"
    )


def _listed(catalog: Catalog, limit: int | None) -> int:
    """Items listed (Parquet: rows, from the files' footers), at most `limit`."""
    if catalog.kind != "parquet":
        n = len(catalog.refs)
    else:
        import pyarrow.parquet as pq

        n = 0
        for path in catalog.parquet_files:
            with catalog.fs.open(path, "rb") as f:
                n += pq.ParquetFile(f).metadata.num_rows
    return n if limit is None else min(n, limit)


def _pick(catalog: Catalog, limit: int | None, sample: int, seed: int) -> np.ndarray | None:
    """Sorted indices of `sample` listed items drawn without replacement; None when all of them fit."""
    n = _listed(catalog, limit)
    if n <= sample:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:sample])


def iter_decoded(
    catalog: Catalog, spec: DecodeSpec, image_column, label_column, storage_options, limit, pick=None
):
    """Decoded batches (fetch.py's columns) of the catalog's items: at most `limit` items, only the listing
    indices in `pick` (sorted) when given."""
    left = limit if limit is not None else -1
    if catalog.kind != "parquet":
        refs = catalog.refs if left < 0 else catalog.refs[:left]
        if pick is not None:
            refs = [refs[i] for i in pick]
        for i in range(0, len(refs), BATCH):
            chunk = refs[i : i + BATCH]
            batch = {
                "path": [r.path for r in chunk],
                "label": np.asarray([r.label for r in chunk], dtype=np.int64),
                "name": [r.name for r in chunk],
            }
            yield refs_batch(batch, catalog.fs, spec, storage_options)
        return
    import pyarrow.parquet as pq

    columns = parquet_columns(catalog, image_column, label_column)
    picked = None if pick is None else set(pick.tolist())
    row = 0  # listing index of the next row
    for path in catalog.parquet_files:
        with catalog.fs.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            wanted = [c for c in (image_column, columns["label"]) if c]
            for rb in pf.iter_batches(batch_size=BATCH, columns=wanted):
                if left == 0:
                    return
                rows = rb.to_pylist()[: left if left > 0 else None]
                left -= len(rows) if left > 0 else 0
                first, row = row, row + len(rows)
                if picked is not None:
                    rows = [r for i, r in enumerate(rows, first) if i in picked]
                    if not rows:
                        continue
                batch = {c: [r[c] for r in rows] for c in wanted}
                batch[FILE_COLUMN] = [path] * len(rows)
                yield parquet_batch(batch, catalog.fs, spec, columns, storage_options)


def parquet_columns(catalog: Catalog, image_column: str, label_column: str | None) -> dict:
    return {
        "image": image_column,
        "label": label_column if catalog.labelled else None,
        "file": FILE_COLUMN,
        "label_map": catalog.label_map,
    }
