"""Hugging Face `datasets` schema metadata for the Parquet files genart writes. Plain functions, no IO.

`datasets` reads a Parquet schema's `huggingface` key-value metadata ({"info": {"features": ...}}, as
`datasets.Features.to_dict` writes it) to decode columns: an `Image` struct {bytes, path} becomes a PIL
image, a `ClassLabel` integer column carries its class names. A feature applies only where its Arrow type
matches the column's (a ClassLabel column must be int64); other columns keep their plain Arrow types.
pyarrow, pandas, duckdb and Ray Data ignore the metadata.
"""

from __future__ import annotations

import json

import pyarrow as pa

HF_KEY = b"huggingface"
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # the Image feature's storage
IMAGE = {"_type": "Image"}


def class_label(names) -> dict:
    """The ClassLabel feature of an int64 column whose value i is class `names[i]`."""
    return {"names": [str(n) for n in names], "_type": "ClassLabel"}


def value(dtype: str) -> dict:
    """A plain Value feature (`int64`, `uint64`, `float32`, `string`, ...)."""
    return {"dtype": dtype, "_type": "Value"}


def schema_metadata(features: dict) -> dict[bytes, bytes]:
    """The schema key-value metadata that makes `datasets` decode `features` (column -> feature dict)."""
    return {HF_KEY: json.dumps({"info": {"features": features}}).encode()}


def class_names_of(meta: dict) -> tuple[str, ...] | None:
    """A bundle's class names (model.json's `class_names`, else "0".."k-1"); None for unconditional models."""
    k = meta.get("num_classes") or 0
    if not k:
        return None
    return tuple(str(n) for n in (meta.get("class_names") or range(k)))


def read_class_names(schema: pa.Schema) -> dict[str, tuple[str, ...]]:
    """{column: class names} of the top-level ClassLabel features in a Parquet schema's `huggingface`
    metadata, as any `datasets` version writes it (newer: {"names", "_type"}; older add "num_classes", "id",
    "names_file": ignored). Nested features are not read. Missing or malformed metadata gives {}; never raises."""
    raw = (schema.metadata or {}).get(HF_KEY)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
        features = doc.get("info", {}).get("features", {}) if isinstance(doc, dict) else {}
    except (ValueError, AttributeError):
        return {}
    out = {}
    for column, feature in features.items() if isinstance(features, dict) else ():
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            names = feature.get("names")
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                out[column] = tuple(names)
    return out
