"""Catalog items -> decoded batches: read each file's bytes (a missing file is counted, not raised), take
Parquet rows' embedded bytes or resolve their paths, map labels, then `decode.decode_batch`. Plain functions
that `read.py` calls in a loop and `sources.py` hands to Ray Data's map_batches: one code path."""

from __future__ import annotations

import posixpath

import numpy as np

from genart.data.catalog import resolve_image_path
from genart.data.decode import DecodeSpec, decode_batch
from genart.data.labels import nfc
from genart.errors import StorageError
from genart.storage.fs import get_fs


def read_bytes(fs, path: str, storage_options: dict | None) -> tuple[bytes | None, str]:
    """(bytes, '') or (None, 'missing_file' | 'unreadable_uri'). A URI of another filesystem is opened with
    the source's storage options."""
    try:
        if "://" in path or "::" in path:
            other, path = get_fs(path, storage_options)
            return other.cat_file(path), ""
        return fs.cat_file(path), ""
    except FileNotFoundError:
        return None, "missing_file"
    except (
        OSError,
        ValueError,
        StorageError,
    ):  # no such bucket or host, no access: counted, named in the report
        return None, "unreadable_uri"


def refs_batch(batch: dict, fs, spec: DecodeSpec, storage_options: dict | None = None) -> dict:
    """{'path', 'label', 'name'} -> decode_batch's columns."""
    data, reasons = [], []
    for path in batch["path"]:
        blob, reason = read_bytes(fs, str(path), storage_options)
        data.append(blob)
        reasons.append(reason)
    return decode_batch(
        {"data": data, "reason": reasons, "label": batch["label"], "name": batch["name"]}, spec
    )


def parquet_batch(
    batch: dict, fs, spec: DecodeSpec, columns: dict, storage_options: dict | None = None
) -> dict:
    """Parquet rows -> decode_batch's columns. `columns`: {'image', 'label' (None: unlabelled), 'file' (the
    column holding each row's Parquet file path), 'label_map' (string label -> id, or None)}."""
    images = batch[columns["image"]]
    n = len(images)
    files = batch[columns["file"]]
    data, reasons, names = [None] * n, [""] * n, [""] * n
    for i, item in enumerate(images):
        blob, path = _bytes_and_path(item)
        names[i] = path or f"{posixpath.basename(str(files[i]))} row"
        if blob is not None:
            data[i] = blob
        elif path:
            data[i], reasons[i] = read_bytes(
                fs, resolve_image_path(path, posixpath.dirname(str(files[i]))), storage_options
            )
        else:
            reasons[i] = "missing_file"
    return decode_batch(
        {"data": data, "reason": reasons, "label": _labels(batch, columns, n), "name": names}, spec
    )


def _bytes_and_path(item) -> tuple[bytes | None, str]:
    """The Image feature's storages: {bytes, path} struct, bytes, or a path string."""
    if isinstance(item, dict):
        blob, path = item.get("bytes"), item.get("path")
        return (bytes(blob) if blob is not None else None), (str(path) if path else "")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item), ""
    if isinstance(item, str):
        return None, item
    return None, ""


def _labels(batch: dict, columns: dict, n: int) -> np.ndarray:
    col = columns.get("label")
    if not col:
        return np.full(n, -1, dtype=np.int64)
    values = batch[col]
    mapping = columns.get("label_map")
    if mapping is not None:
        return np.asarray([mapping[nfc(str(v))] for v in values], dtype=np.int64)
    return np.asarray(values, dtype=np.int64)
