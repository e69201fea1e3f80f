"""Data sources -> Ray Data datasets of {'image': uint8 (S,S,C), 'label': int64}. Imports ray (an edge)."""

from __future__ import annotations

import logging

import numpy as np

from genart.config.train import TrainConfig
from genart.data.decode import decode_batch
from genart.data.digits import CLASS_NAMES, load_digits_arrays
from genart.errors import DataError
from genart.storage.fs import exists, get_fs, list_dir, redact

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "webp"]


def build_dataset(cfg: TrainConfig):
    """Return (ray.data.Dataset, info dict with count, skipped, class_names)."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # genart prints its own progress
    m, d = cfg.model, cfg.data
    if d.source == "digits":
        if m.channels != 1:
            raise DataError("data.source `digits` is grayscale: set model.channels=1")
        images, labels = load_digits_arrays(m.image_size)
        ds = ray.data.from_items([{"image": im, "label": int(lb)} for im, lb in zip(images, labels)])
        return ds, {"source": "digits", "count": len(images), "skipped": 0, "class_names": CLASS_NAMES}

    fs, path = get_fs(d.source, cfg.storage.options)
    path = _resolve(fs, path, d.source)
    if isinstance(path, list):  # the files a glob matched
        is_parquet = all(p.endswith(".parquet") for p in path)
    else:
        is_parquet = path.endswith(".parquet") or (
            fs.isdir(path) and any(p.endswith(".parquet") for p in list_dir(fs, path))
        )
    pa_fs = _pyarrow_fs(fs)
    if is_parquet:
        ds = ray.data.read_parquet(path, filesystem=pa_fs)
        image_col, label_col = d.image_column, d.label_column
    else:
        if m.num_classes:
            raise DataError(
                f"data.source {redact(d.source)} is an image folder, which carries no labels, but "
                f"model.num_classes is {m.num_classes}: train an unconditional model (--set model.num_classes=0) "
                "or give a Parquet source with a label column (data.label_column)"
            )
        ds = ray.data.read_binary_files(path, filesystem=pa_fs, file_extensions=IMAGE_EXTENSIONS)
        image_col, label_col = "bytes", None
    decoded = ds.map_batches(
        decode_batch,
        fn_kwargs={
            "image_size": m.image_size,
            "channels": m.channels,
            "image_column": image_col,
            "label_column": label_col,
        },
        batch_format="numpy",
    ).materialize()
    total = decoded.count()
    good = decoded.filter(expr="ok").drop_columns(["ok"]).materialize()
    count = good.count()
    skipped = total - count
    if skipped:
        log.warning("data.source %s: skipped %d unreadable of %d files", redact(d.source), skipped, total)
    if count == 0:
        raise DataError(
            f"data.source {redact(d.source)} holds no readable images ({total} files, all unreadable); "
            f"point it at a folder of {', '.join(IMAGE_EXTENSIONS)} files or Parquet with an image column"
        )
    names = None
    if m.num_classes:
        labels = np.asarray(good.unique("label"))
        if labels.min() < 0 or labels.max() >= m.num_classes:
            raise DataError(
                f"labels in {redact(d.source)} must be 0..{m.num_classes - 1} for model.num_classes"
            )
        names = [str(i) for i in range(m.num_classes)]
    return good, {"source": redact(d.source), "count": count, "skipped": skipped, "class_names": names}


def _resolve(fs, path: str, source: str) -> str | list[str]:
    """The source's path as written when something exists there (a folder named `cls[1]` or `a*b` is that
    folder, never a pattern); else, when it has `*`, `?` or `[`, the files the glob matches (a documented
    form of data.source). Raises DataError when neither finds anything."""
    from glob import has_magic

    if exists(fs, path):
        return path
    matches = sorted(p for p in fs.glob(path) if fs.isfile(p)) if has_magic(path) else []
    if not matches:
        raise DataError(
            f"data.source {redact(source)} does not exist; give `digits` or a folder, glob or Parquet URI"
        )
    return matches


def _pyarrow_fs(fs):
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(fs))
