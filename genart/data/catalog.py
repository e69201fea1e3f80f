"""Listing a source the way its tools write it -> a Catalog: which files or Parquet rows, their labels, the class
names. No pixels, no Ray. Rules (docs: README "Train on your own art"):

- class folders (torchvision ImageFolder): each immediate subfolder of the root is a class, files in nested
  folders count for it; names starting with `.` or `__` are skipped (`datasets` imagefolder), so are loose
  root files (`outside_class_folder`) and other extensions; names are NFC, sorted by codepoint. A folder
  without subfolders (or a glob) is unlabelled.
- `metadata.csv` / `metadata.jsonl` at the root (`datasets` imagefolder): `file_name` relative to it (absolute,
  `..` and `://` are refused) and the label column `data.label_column`; folder labels are then ignored.
- Parquet (a file, a folder of them or a glob): the image column is a `{bytes, path}` struct, bytes or a path
  string; a path-only row is resolved against the Parquet file's folder (a URI or absolute path as is).
  Integer labels take their names from the `huggingface` ClassLabel metadata; string labels get sorted names.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass, field

import numpy as np

from genart.data.labels import (
    check_num_classes,
    encode_string_labels,
    folder_class_names,
    int_label_names,
    nfc,
)
from genart.errors import ConfigError, DataError
from genart.storage import hf
from genart.storage.fs import exists, get_fs, list_dir, redact

# torchvision's IMG_EXTENSIONS plus the animated and JPEG variants `datasets` accepts
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
    ".apng",
    ".jfif",
)
METADATA_FILES = ("metadata.csv", "metadata.jsonl")


@dataclass(frozen=True)
class ImageRef:
    """One image to read: `path` on the catalog's filesystem (or a URI of another), its label (-1: none) and
    the name shown in reports (the path relative to the source)."""

    path: str
    label: int
    name: str


@dataclass(frozen=True)
class Catalog:
    """kind: folder | files | metadata | parquet. `refs` for file kinds; `parquet_files` and `label_map`
    (string label -> id) for Parquet; `skipped` {reason: names} found while listing."""

    kind: str
    fs: object = field(repr=False, compare=False)
    class_names: tuple[str, ...] | None
    refs: tuple[ImageRef, ...] = ()
    parquet_files: tuple[str, ...] = ()
    label_map: dict | None = None
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.class_names is not None


def list_source(
    source: str, storage_options: dict | None, image_column: str = "image", label_column: str | None = "label"
) -> Catalog:
    """The Catalog of `source` (a folder, glob or Parquet URI). Raises ConfigError when nothing is there;
    DataError when a class folder is empty, metadata is malformed or labels are unusable; StorageError when unreachable."""
    from glob import has_magic

    fs, path = get_fs(source, storage_options)
    if exists(fs, path):
        if fs.isdir(path):
            return _list_dir(fs, path, source, image_column, label_column)
        if path.endswith(".parquet"):
            return list_parquet(fs, [path], source, image_column, label_column)
        return _files_catalog(fs, [path], posixpath.dirname(path))
    matches = sorted(p for p in fs.glob(path) if fs.isfile(p)) if has_magic(path) else []
    if not matches:  # the key points nowhere: a config error (exit 2)
        raise ConfigError(
            f"data.source {redact(source)} does not exist; give `digits` or a folder, glob or Parquet URI"
        )
    if all(p.endswith(".parquet") for p in matches):
        return list_parquet(fs, matches, source, image_column, label_column)
    return _files_catalog(fs, matches, posixpath.dirname(path.split("*")[0]))


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _files_catalog(fs, paths: list[str], root: str) -> Catalog:
    """An unlabelled list of files (a glob's matches)."""
    skipped: dict[str, list[str]] = {}
    refs = []
    for p in paths:
        name = posixpath.relpath(p, root) if root else p
        if _is_image(p):
            refs.append(ImageRef(p, -1, name))
        else:
            skipped.setdefault("extension", []).append(name)
    return Catalog("files", fs, None, tuple(refs), skipped=skipped)


def _list_dir(fs, root: str, source: str, image_column: str, label_column: str | None) -> Catalog:
    entries = list_dir(fs, root, detail=True)
    names = {posixpath.basename(e["name"].rstrip("/")): e for e in entries}
    for meta in METADATA_FILES:
        if meta in names and names[meta]["type"] != "directory":
            return list_metadata(fs, root, meta, label_column)
    found = _walk(fs, root)
    files = sorted(p for p in found if p.endswith(".parquet"))
    if files and not any(_is_image(p) for p in found):
        return list_parquet(fs, files, source, image_column, label_column)
    return list_folder(fs, root, entries)


def _walk(fs, root: str) -> list[str]:
    """Every file under root whose relative path has no hidden part."""
    fs.invalidate_cache(root)
    return [p for p in fs.find(root) if not any(_is_hidden(s) for s in posixpath.relpath(p, root).split("/"))]


def list_folder(fs, root: str, entries: list[dict]) -> Catalog:
    """Class folders (torchvision layout, hidden entries skipped) or, without subfolders, unlabelled files."""
    skipped: dict[str, list[str]] = {}
    dirs, loose = [], []
    for e in sorted(entries, key=lambda e: e["name"]):
        base = posixpath.basename(e["name"].rstrip("/"))
        if _is_hidden(base):
            skipped.setdefault("hidden", []).append(base + ("/" if e["type"] == "directory" else ""))
        elif e["type"] == "directory":
            dirs.append(base)
        else:
            loose.append(base)
    refs: list[ImageRef] = []
    if not dirs:
        for base in loose:
            if _is_image(base):
                refs.append(ImageRef(posixpath.join(root, base), -1, base))
            else:
                skipped.setdefault("extension", []).append(base)
        return Catalog("folder", fs, None, tuple(refs), skipped=skipped)
    for base in loose:
        skipped.setdefault("outside_class_folder" if _is_image(base) else "extension", []).append(base)
    class_names = folder_class_names(dirs)
    index = {name: i for i, name in enumerate(class_names)}
    empty = []
    for d in sorted(dirs, key=lambda d: index[nfc(d)]):
        found = 0
        for p in sorted(_walk(fs, posixpath.join(root, d))):
            rel = posixpath.relpath(p, root)
            if _is_image(p):
                refs.append(ImageRef(p, index[nfc(d)], nfc(rel)))
                found += 1
            else:
                skipped.setdefault("extension", []).append(nfc(rel))
        hidden = [e for e in list_dir(fs, posixpath.join(root, d)) if _is_hidden(posixpath.basename(e))]
        skipped.setdefault("hidden", []).extend(nfc(posixpath.relpath(h, root)) for h in hidden)
        if not found:
            empty.append(nfc(d))
    if empty:
        raise DataError(
            f"class folders {', '.join(repr(e) for e in empty)} hold no image files "
            f"(supported: {' '.join(IMAGE_EXTENSIONS)}); remove them or add images"
        )
    return Catalog("folder", fs, class_names, tuple(refs), skipped={k: v for k, v in skipped.items() if v})


def list_metadata(fs, root: str, meta_file: str, label_column: str | None) -> Catalog:
    """`datasets` imagefolder with a metadata file. Raises DataError for a missing `file_name`, an unsafe path
    or rows without a label."""
    text = fs.cat_file(posixpath.join(root, meta_file)).decode("utf-8-sig")
    if meta_file.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise DataError(f"{meta_file}: not JSON lines ({exc})") from exc
    if rows and "file_name" not in rows[0]:
        raise DataError(f"{meta_file}: no `file_name` column (columns: {', '.join(rows[0])})")
    for r in rows:
        name = str(r["file_name"])
        if "://" in name or name.startswith("/") or ".." in name.split("/"):
            raise DataError(
                f"{meta_file}: file_name {name!r} must be a path inside the folder (no /, .. or ://)"
            )
    labels, names = np.full(len(rows), -1, np.int64), None
    if label_column and rows and label_column in rows[0]:
        values = [r.get(label_column) for r in rows]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            labels = np.asarray(values, dtype=np.int64)
            names = int_label_names(labels, None, f"{meta_file} column {label_column!r}")
        else:
            labels, names = encode_string_labels(values, f"{meta_file} column {label_column!r}")
    refs = tuple(
        ImageRef(posixpath.join(root, str(r["file_name"])), int(lb), str(r["file_name"]))
        for r, lb in zip(rows, labels)
    )
    return Catalog("metadata", fs, names, refs)


def list_parquet(fs, files: list[str], source: str, image_column: str, label_column: str | None) -> Catalog:
    """Parquet files: checks the image column, reads only the label column (driver side) to name classes."""
    import pyarrow.parquet as pq

    with fs.open(files[0], "rb") as f:
        schema = pq.read_schema(f)
    if image_column not in schema.names:
        raise DataError(
            f"data.image_column {image_column!r} is not a column of {redact(source)} (columns: {', '.join(schema.names)})"
        )
    if not label_column or label_column not in schema.names:
        return Catalog("parquet", fs, None, parquet_files=tuple(files))
    column = pq.read_table(files, columns=[label_column], filesystem=fs).column(label_column)
    import pyarrow as pa

    key = f"data.label_column {label_column!r} of {redact(source)}"
    if pa.types.is_integer(column.type):
        ids = np.asarray(column.to_numpy(zero_copy_only=False))
        if column.null_count:
            raise DataError(f"{key}: {column.null_count} rows have no label")
        names = int_label_names(ids, hf.read_class_names(schema).get(label_column), key)
        return Catalog("parquet", fs, names, parquet_files=tuple(files))
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        _, names = encode_string_labels(column.to_pylist(), key)
        return Catalog(
            "parquet", fs, names, parquet_files=tuple(files), label_map={n: i for i, n in enumerate(names)}
        )
    raise DataError(f"{key}: labels must be integers or strings, not {column.type}")


def resolve_image_path(path: str, parquet_dir: str) -> str:
    """A path-only Image row's file: a URI or absolute path as is, a relative one against the Parquet's
    folder (`datasets` uses the process's working directory, huggingface/datasets#7733; Ray workers have
    another one, so genart does not)."""
    if "://" in path or "::" in path or path.startswith("/"):
        return path
    return posixpath.join(parquet_dir, path)


def class_names_for(catalog: Catalog, num_classes: int, shown: str) -> list[str] | None:
    """The bundle's class names: the data's, checked against model.num_classes (None when unconditional).
    Raises DataError for a conditional model on unlabelled data, ConfigError for a count mismatch."""
    if not num_classes:
        return None
    if not catalog.labelled:
        what = (
            "an image folder, which carries no labels"
            if catalog.kind != "parquet"
            else "Parquet without a label column"
        )
        raise DataError(
            f"data.source {shown} is {what}, but model.num_classes is {num_classes}: train an unconditional "
            "model (--set model.num_classes=0), put the images in one subfolder per class, or give Parquet "
            "with a label column (data.label_column)"
        )
    names = catalog.class_names
    if names == tuple(str(i) for i in range(len(names))) and len(names) < num_classes:
        names = tuple(str(i) for i in range(num_classes))  # unnamed ids: the data need not hold every class
    check_num_classes(num_classes, names, shown)
    return list(names)
