"""Checks on an untrusted bundle before anything is allocated for it (bundle.py's loader calls these).

A bundle may come from anyone. Its model.json is held to the bounds `genart train` accepts (the train
config's model schema), its top-level fields must agree with the generator spec, the file names it
names are plain names inside the bundle, and each weights file's safetensors header (read without
materialising a tensor) must list exactly the tensors, dtypes and shapes of the model built on the
meta device. Only then are the weights loaded, and non-finite values are refused.
"""

from __future__ import annotations

import json
import struct

from pydantic import ValidationError

from genart.config.train import GENERATOR_KEYS, GanModelConfig, VaeModelConfig
from genart.errors import BundleError
from genart.storage import safejson

SHARED = ("arch", "image_size", "channels", "latent_dim", "num_classes")  # top level == generator spec
D_KEYS = ("image_size", "channels", "num_classes", "d_width", "attention", "spectral_norm")
MODEL_SCHEMA = {"dcgan": GanModelConfig, "vae": VaeModelConfig}
MAX_HEADER = 16 << 20  # a safetensors header of a genart model is a few KB
MAX_META = 32 << 20  # model.json: 10000 class names of up to 1000 characters fit
MAX_CLASSES = next(m.le for m in GanModelConfig.model_fields["num_classes"].metadata if hasattr(m, "le"))
DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
}  # torch dtype name -> safetensors


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _schema_error(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{where}.{loc}: {err['msg']} (got {_short(err.get('input'))})"


def check_spec(spec, where: str) -> dict:
    """The generator spec `where` (e.g. `model.json generator`), held to the train config's bounds.

    Raises ValueError naming the field; returns the spec."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where} is not a mapping")
    arch = spec.get("arch")
    if arch not in GENERATOR_KEYS:
        raise ValueError(f"{where}.arch: {_short(arch)} is not one of {', '.join(GENERATOR_KEYS)}")
    allowed = {"arch", *GENERATOR_KEYS[arch]}
    missing, unknown = sorted(allowed - set(spec)), sorted(set(spec) - allowed)
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    if unknown:
        raise ValueError(f"{where}: unknown keys {_short(unknown)}")
    try:
        MODEL_SCHEMA[arch].model_validate(spec, strict=True)
    except ValidationError as exc:
        raise ValueError(_schema_error(exc, where)) from None
    return spec


def check_discriminator(d, meta: dict) -> dict:
    """model.json's `discriminator` entry: a plain file name, a sha256, D's spec within the bounds and
    agreeing with the top-level fields. Raises ValueError naming the field."""
    if not isinstance(d, dict):
        raise ValueError("model.json discriminator is not a mapping")
    plain_name(d.get("file"), "model.json discriminator.file")
    sha = d.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ValueError(f"model.json discriminator.sha256: {_short(sha)} is not a sha256 hex digest")
    missing = [k for k in D_KEYS if k not in d]
    if missing:
        raise ValueError(f"model.json discriminator: missing {missing}")
    fields = {k: d[k] for k in D_KEYS}
    try:
        GanModelConfig.model_validate(fields, strict=True)
    except ValidationError as exc:
        raise ValueError(_schema_error(exc, "model.json discriminator")) from None
    for key in ("image_size", "channels", "num_classes"):
        if d[key] != meta[key]:
            raise ValueError(
                f"model.json discriminator.{key} is {_short(d[key])}, but the bundle's {key} is {meta[key]!r}"
            )
    return d


def plain_name(name, where: str) -> str:
    """A file name inside the bundle's folder: no separators, no `..`, no scheme. Raises ValueError."""
    bad = (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\:\0")
        or len(name) > 255
    )
    if bad:
        raise ValueError(f"{where}: {_short(name)} is not a plain file name inside the bundle")
    return name


def check_meta(meta: dict) -> None:
    """Everything in model.json that sizes or locates something. Raises ValueError naming the field."""
    spec = check_spec(meta["generator"], "model.json generator")
    for key in SHARED:
        if meta[key] != spec[key]:
            raise ValueError(
                f"model.json {key} is {_short(meta[key])}, but the generator spec says {spec[key]!r}"
            )
    names, n = meta.get("class_names"), meta["num_classes"]
    if names is not None and (
        not isinstance(names, list)
        or (len(names) != n if n else len(names) > MAX_CLASSES)
        or not all(isinstance(name, str) and len(name) <= 1000 for name in names)
    ):
        raise ValueError(
            f"model.json class_names: expected {n or f'at most {MAX_CLASSES}'} names, got {_short(names)}"
        )
    if meta.get("discriminator"):
        check_discriminator(meta["discriminator"], meta)


def header(blob: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype, shape)} from a safetensors blob's header, without reading any tensor.
    Raises ValueError when the blob is not a safetensors file."""
    if len(blob) < 8:
        raise ValueError("not a safetensors file (shorter than its header length)")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > MAX_HEADER or 8 + size > len(blob):
        raise ValueError(f"not a safetensors file (header length {size} does not fit {len(blob)} bytes)")
    try:
        entries = safejson.loads(blob[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(entries, dict):
        raise ValueError("not a safetensors file (header is not a mapping)")
    out = {}
    for name, entry in entries.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise ValueError(f"not a safetensors file (entry {_short(name)} has no shape)")
        out[name] = (entry.get("dtype"), tuple(entry["shape"]))
    return out


def expected_tensors(build) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (safetensors dtype, shape)} of the module `build()` makes, built on the meta device (no memory)."""
    import torch  # here, not at import: drivers check model.json without torch

    with torch.device("meta"):
        module = build()
    names = {k: (str(v.dtype).removeprefix("torch."), tuple(v.shape)) for k, v in module.state_dict().items()}
    return {k: (DTYPES.get(d, f"torch.{d}"), shape) for k, (d, shape) in names.items()}


def max_bytes(expected: dict) -> int:
    """The largest a safetensors file of these tensors can be: their bytes plus the largest header."""
    width = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    total = 0
    for dtype, shape in expected.values():
        n = width.get(dtype, 8)
        for dim in shape:
            n *= dim
        total += n
    return total + MAX_HEADER + 8


def compare(found: dict, expected: dict) -> None:
    """Raise ValueError naming the first tensor whose presence, dtype or shape differs."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(
            f"tensors missing: {_short(missing[:5])}, unexpected: {_short(extra[:5])} "
            f"({len(missing)} missing, {len(extra)} unexpected)"
        )
    for name, (dtype, shape) in expected.items():
        if found[name] != (dtype, shape):
            raise ValueError(
                f"tensor {name} is {found[name][0]} {list(found[name][1])}, expected {dtype} {list(shape)}"
            )


def check_finite(state: dict, file: str) -> None:
    """Raise ValueError naming the first floating tensor holding NaN or Inf."""
    import torch

    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{file}: tensor {name} holds NaN or Inf values")


def fail(uri: str, what: str) -> BundleError:
    """The error for an untrusted bundle whose description or weights were refused."""
    return BundleError(f"bundle {uri}: {what}; re-export the bundle with `genart train`")
