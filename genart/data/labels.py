"""Class-name rules (pure): folder names, string labels, integer labels checked against their names."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from genart.errors import ConfigError, DataError


def nfc(name: str) -> str:
    """A name as one Unicode form: macOS writes folder names decomposed (NFD), Linux keeps what it is given."""
    return unicodedata.normalize("NFC", name)


def folder_class_names(names: Iterable[str]) -> tuple[str, ...]:
    """Class names of class folders: NFC-normalised, unique, sorted by codepoint (torchvision and `datasets`
    imagefolder both sort; uppercase before lowercase, a prefix before its extensions)."""
    return tuple(sorted({nfc(n) for n in names}))


def encode_string_labels(values: Sequence[str | None], key: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """String labels -> (int64 ids (N,), sorted unique names), as `datasets.class_encode_column` does.
    Raises DataError naming `key` when a label is missing (None)."""
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise DataError(f"{key}: {len(missing)} rows have no label (first: row {missing[0]})")
    names = tuple(sorted({nfc(str(v)) for v in values}))
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[nfc(str(v))] for v in values], dtype=np.int64), names


def int_label_names(ids: np.ndarray, names: Sequence[str] | None, key: str) -> tuple[str, ...]:
    """Names of integer labels: `names` (a ClassLabel's) when given, else "0".."max". Raises DataError naming
    `key` when a label is negative or has no name."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise DataError(f"{key}: labels must be >= 0, found {int(ids.min())}")
    if names is None:
        return tuple(str(i) for i in range(int(ids.max()) + 1 if ids.size else 0))
    if ids.size and ids.max() >= len(names):
        raise DataError(
            f"{key}: label {int(ids.max())} has no class name (the ClassLabel names {len(names)} classes)"
        )
    return tuple(str(n) for n in names)


def check_num_classes(num_classes: int, names: tuple[str, ...] | None, source: str) -> None:
    """A conditional model's `model.num_classes` must equal the number of classes the data has. Raises
    ConfigError naming the key and the names found (an unconditional model, 0, takes any data)."""
    if not num_classes or names is None or len(names) == num_classes:
        return
    shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    raise ConfigError(
        f"model.num_classes is {num_classes} but data.source {source} has {len(names)} classes ({shown}); "
        f"set model.num_classes={len(names)} (or 0 for an unconditional model)"
    )
