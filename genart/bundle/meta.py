"""A bundle's description, model.json, read and checked without importing torch (drivers plan jobs from it;
`store.py` loads the weights)."""

from __future__ import annotations

import json

from genart.bundle import check
from genart.errors import BundleError
from genart.storage import safejson
from genart.storage.fs import get_fs, join, redact

WEIGHTS, META = "model.safetensors", "model.json"
FORMAT = "genart-bundle/1"
REQUIRED = ("format", "arch", "image_size", "channels", "latent_dim", "num_classes", "model_id", "generator")


def read_file(fs, path: str, name: str, uri: str, limit: int = check.MAX_META) -> bytes:
    """The file `name` of the bundle, refused unread when it is larger than `limit` bytes."""
    try:
        size = fs.size(join(path, name))
        if size is not None and size > limit:
            raise check.fail(
                redact(uri), f"{name} is {size} bytes, more than the {limit} its model.json allows"
            )
        with fs.open(join(path, name), "rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        raise BundleError(
            f"bundle {redact(uri)} has no {name}; a bundle is a folder holding {WEIGHTS} and {META} "
            "(written by `genart train` at OUTPUT/model)"
        ) from None


def read_meta(uri: str, storage_options: dict | None = None) -> dict:
    """The bundle's model.json, validated, without reading the weights (drivers plan jobs from it).

    Returns model.json as a dict (arch, image_size, channels, latent_dim, num_classes, class_names,
    model_id, ...), checked against the bounds of `check.py`.

    Raises BundleError when model.json is missing, too large, not JSON or not a genart bundle description;
    StorageError when the storage cannot be read."""
    fs, path = get_fs(uri, storage_options)
    return parse_meta(read_file(fs, path, META, uri), uri)


def parse_meta(raw_meta: bytes, uri: str) -> dict:
    """model.json parsed and checked (bounds, agreement, file names) before anything is sized from it.
    Raises BundleError."""
    try:
        meta = safejson.loads(raw_meta)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"bundle {redact(uri)}: {META} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"bundle {redact(uri)}: {META} is not a JSON object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing or meta.get("format") != FORMAT:
        raise BundleError(
            f"bundle {redact(uri)}: {META} is not a {FORMAT} description (missing: {', '.join(missing) or 'format'})"
        )
    if not (isinstance(meta["model_id"], str) and len(meta["model_id"]) == 64):
        raise check.fail(redact(uri), f"{META} model_id is not a sha256 hex digest")
    try:
        check.check_meta(meta)
    except ValueError as exc:
        raise check.fail(redact(uri), str(exc)) from None
    return meta
