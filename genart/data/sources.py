"""Data sources -> Ray Data datasets of {'image': uint8 (S,S,C), 'label': int64}. Imports ray (an edge).

The listing (catalog.py), fetch and decode (fetch.py, decode.py) are the ones `genart.read_images` and
`genart data preview` run; here Ray Data runs them in parallel tasks."""

from __future__ import annotations

import logging

from genart.config.train import TrainConfig
from genart.data.catalog import Catalog, class_names_for, list_source
from genart.data.digits import CLASS_NAMES, load_digits_arrays
from genart.data.fetch import parquet_batch, refs_batch
from genart.data.read import decode_spec, no_images_message
from genart.data.report import ReportBuilder
from genart.errors import DataError
from genart.storage.fs import redact

log = logging.getLogger(__name__)
REPORT_COLUMNS = ["ok", "reason", "notes", "name", "label"]


def build_dataset(cfg: TrainConfig):
    """Return (ray.data.Dataset, info dict with source, count, skipped, class_names, report). Raises DataError
    for a source without usable images or labels, ConfigError when model.num_classes does not match them."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # genart prints its own progress
    m, d = cfg.model, cfg.data
    if d.source == "digits":
        if m.channels != 1:
            raise DataError("data.source `digits` is grayscale: set model.channels=1")
        images, labels = load_digits_arrays(m.image_size)
        ds = ray.data.from_items([{"image": im, "label": int(lb)} for im, lb in zip(images, labels)])
        return ds, {"source": "digits", "count": len(images), "skipped": 0, "class_names": CLASS_NAMES}

    shown = redact(d.source)
    catalog = list_source(d.source, cfg.storage.options, d.image_column, d.label_column)
    names = class_names_for(catalog, m.num_classes, shown)
    spec = decode_spec(m.image_size, m.channels, d.fit, d.background_rgb)
    builder = ReportBuilder(catalog.class_names)
    builder.add_listing(catalog.skipped)
    if catalog.kind != "parquet" and not catalog.refs:
        raise DataError(no_images_message(d.source, builder.build()))
    decoded = _decoded(catalog, spec, cfg).materialize()
    for b in decoded.select_columns(REPORT_COLUMNS).iter_batches(batch_format="numpy", batch_size=4096):
        builder.add_rows(b["ok"], b["reason"], b["notes"], b["name"], b["label"])
    report = builder.build()
    if report.count == 0:
        raise DataError(no_images_message(d.source, report))
    (log.warning if report.skipped else log.info)(report.line(shown))
    from ray.data.expressions import col

    good = decoded.filter(expr=col("ok") == True).select_columns(["image", "label"]).materialize()  # noqa: E712
    info = {
        "source": shown,
        "count": report.count,
        "skipped": report.total_skipped,
        "class_names": names,
        "report": report.as_dict(),
    }
    return good, info


def _decoded(catalog: Catalog, spec, cfg: TrainConfig):
    import ray.data

    opts = cfg.storage.options
    if catalog.kind != "parquet":
        ds = ray.data.from_items([{"path": r.path, "label": r.label, "name": r.name} for r in catalog.refs])
        kwargs = {"fs": catalog.fs, "spec": spec, "storage_options": opts}
        return ds.map_batches(refs_batch, fn_kwargs=kwargs, batch_format="numpy", batch_size=64)
    from genart.data.read import parquet_columns

    columns = parquet_columns(catalog, cfg.data.image_column, cfg.data.label_column)
    wanted = [c for c in (columns["image"], columns["label"]) if c]
    ds = ray.data.read_parquet(
        list(catalog.parquet_files), filesystem=_pyarrow_fs(catalog.fs), include_paths=True
    ).select_columns([*wanted, "path"])
    kwargs = {"fs": catalog.fs, "spec": spec, "columns": {**columns, "file": "path"}, "storage_options": opts}
    return ds.map_batches(parquet_batch, fn_kwargs=kwargs, batch_format="numpy", batch_size=64)


def _pyarrow_fs(fs):
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(fs))
