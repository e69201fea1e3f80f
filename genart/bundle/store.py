"""Self-describing model bundles: `model.safetensors` + `model.json` at any URI. The only loader.

Loading never unpickles: weights are safetensors, metadata is JSON. model_id is the sha256 of the
weights file, checked on every load, so a tampered or truncated bundle is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from genart import __version__
from genart.bundle import check
from genart.bundle.meta import FORMAT, META, WEIGHTS, parse_meta, read_file, read_meta  # noqa: F401 - read_meta: re-exported
from genart.cpu_path import CPU_PATH, check_cpu_path
from genart.errors import BundleError
from genart.models.registry import build_generator
from genart.models.sampling import memory_format_of, sample
from genart.storage.fs import get_fs, join, redact

DISCRIMINATOR = (
    "discriminator.safetensors"  # optional: GAN bundles carry D for `filter.scorer: discriminator`
)


def _tensors(module_or_state) -> dict:
    state = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else module_or_state
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_bundle(
    uri: str,
    generator: torch.nn.Module,
    spec: dict,
    training: dict,
    class_names=None,
    storage_options=None,
    discriminator: tuple[dict, dict] | None = None,
) -> dict:
    """Write the bundle (weights first, then model.json) and return its metadata. `discriminator`:
    (D's spec, D's state dict) of a GAN, saved beside the generator for the discriminator score filter."""
    state = _tensors(generator)
    blob = st_save(state)
    d_blob = None
    meta = {
        "format": FORMAT,
        "arch": spec["arch"],
        "image_size": spec["image_size"],
        "channels": spec["channels"],
        "latent_dim": spec["latent_dim"],
        "num_classes": spec["num_classes"],
        "class_names": list(class_names) if class_names else [str(i) for i in range(spec["num_classes"])],
        "model_id": hashlib.sha256(blob).hexdigest(),
        "genart_version": __version__,
        "generator": spec,
        "training": training,
        "tensors": {k: list(v.shape) for k, v in state.items()},
    }
    if discriminator is not None:
        d_spec, d_state = discriminator
        d_blob = st_save(_tensors(d_state))
        meta["discriminator"] = {
            "file": DISCRIMINATOR,
            "sha256": hashlib.sha256(d_blob).hexdigest(),
            **d_spec,
        }
    fs, path = get_fs(uri, storage_options)
    fs.makedirs(path, exist_ok=True)
    if d_blob is not None:
        with fs.open(join(path, DISCRIMINATOR), "wb") as f:
            f.write(d_blob)
    with fs.open(join(path, WEIGHTS), "wb") as f:
        f.write(blob)
    with fs.open(join(path, META), "w") as f:
        json.dump(meta, f, indent=2)
    return meta


TINY_DCGAN = {
    "arch": "dcgan",
    "image_size": 32,
    "channels": 1,
    "latent_dim": 16,
    "num_classes": 10,
    "g_width": 8,
    "attention": False,
}


def save_untrained_bundle(
    uri: str,
    spec: dict | None = None,
    seed: int = 0,
    storage_options=None,
    discriminator: bool = False,
    bn_gain: float = 1.0,
    class_names=None,
) -> dict:
    """A randomly initialised generator saved as a real bundle: for tests and benchmarks that need a model
    fast. `spec` is a generator spec (default: a tiny 32x32 class-conditional DCGAN); `class_names` as in
    save_bundle (default "0".."k-1"); `discriminator`
    adds a randomly initialised D (d_width 8) to a dcgan bundle; `bn_gain` scales every BatchNorm2d weight
    (4 spreads pixels the way a trained model's are, so rounding to uint8 is exercised)."""
    from genart.models.gan import Discriminator

    spec = dict(spec or TINY_DCGAN)
    torch.manual_seed(seed)
    generator = build_generator(spec).eval()
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.mul_(bn_gain)
    disc = None
    if discriminator:
        d_spec = {k: spec[k] for k in ("image_size", "channels", "num_classes", "attention")}
        d_spec.update(d_width=8, spectral_norm=True, loss="hinge")
        keys = ("image_size", "channels", "num_classes", "d_width", "attention", "spectral_norm")
        disc = (d_spec, Discriminator(**{k: d_spec[k] for k in keys}).state_dict())
    training = {"steps": 0, "world_size": 0, "data": {"source": "none"}}
    return save_bundle(
        uri, generator, spec, training, class_names, storage_options=storage_options, discriminator=disc
    )


@dataclass
class Bundle:
    """A loaded bundle: `.meta` (model.json) and `.generate(seeds, class_ids=None)` -> uint8 (N, H, W, C).

    `engine` (a `genart.generation.engine.Engine`, set by `genart.load_bundle(..., inference=...)` or by
    the replica) runs generate with the inference options; without one, generate is the fp32 reference.
    """

    meta: dict
    generator: torch.nn.Module
    device: str = "cpu"
    engine: object | None = None  # anything with .generate(seeds, class_ids, truncation)
    cpu_path: str = CPU_PATH  # how a CPU computes items (genart/cpu_path.py): set "item" for older outputs

    @property
    def model_id(self) -> str:
        return self.meta["model_id"]

    @property
    def num_classes(self) -> int:
        return self.meta["num_classes"]

    def generate(self, seeds, class_ids=None, truncation: float | None = None):
        if self.engine is not None:
            return self.engine.generate(seeds, class_ids, truncation)
        return sample(self.generator, seeds, class_ids, truncation, self.device, self.cpu_path)


def _load_weights(blob: bytes, build, uri: str, file: str, what: str) -> torch.nn.Module:
    """The module `build()` makes, loaded from the safetensors `blob` once its header's tensors match
    the module built on the meta device and every value is finite. Raises BundleError."""
    try:
        check.compare(check.header(blob), check.expected_tensors(build))
    except ValueError as exc:
        raise BundleError(
            f"bundle {uri}: {file}: weights do not fit the {what} model.json describes ({exc})"
        ) from None
    try:
        state = st_load(blob)
        module = build()
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # safetensors/torch raise several types for a malformed file
        raise BundleError(
            f"bundle {uri}: {file}: weights do not fit the {what} model.json describes "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
        ) from exc
    try:
        check.check_finite(state, file)
    except ValueError as exc:
        raise check.fail(uri, str(exc)) from None
    return module


def load_bundle(
    uri: str, storage_options: dict | None = None, device: str = "cpu", cpu_path: str = CPU_PATH
) -> Bundle:
    """Load and check the bundle at `uri` onto `device` (generate runs the fp32 reference; the package's
    `genart.load_bundle(..., inference=...)` adds the fast path). `cpu_path` (genart/cpu_path.py): how a
    CPU computes items; "item" regenerates the bytes of outputs whose _job.json names no cpu_path. On a CPU
    the generator is kept in that path's memory format (channels_last for block16).

    Returns a Bundle: `meta` (model.json as a dict: arch, image_size, channels, latent_dim, num_classes,
    class_names, model_id, ...), `model_id` (sha256 of the weights), the generator in eval mode on
    `device`, and `generate(seeds, class_ids=None) -> uint8 (N, H, W, C)`.

    Raises BundleError when a file is missing, too large for the bounds in `check.py`, or does not match
    model.json's sha256; StorageError when the storage cannot be read; ValueError for an unknown cpu_path."""
    check_cpu_path(cpu_path)
    fs, path = get_fs(uri, storage_options)
    meta = parse_meta(read_file(fs, path, META, uri), uri)
    spec = meta["generator"]
    blob = read_file(
        fs, path, WEIGHTS, uri, check.max_bytes(check.expected_tensors(lambda: build_generator(spec)))
    )
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta["model_id"]:
        raise BundleError(
            f"bundle {redact(uri)}: {WEIGHTS} has sha256 {digest[:12]}..., but model.json says model_id "
            f"{meta['model_id'][:12]}...; the weights were changed or truncated: re-export the bundle"
        )
    generator = _load_weights(
        blob, lambda: build_generator(spec), redact(uri), WEIGHTS, f"{meta['arch']} generator"
    )
    generator.eval().to(device)
    if torch.device(device).type == "cpu":
        generator.to(memory_format=memory_format_of(cpu_path))  # once here, not a copy per generate call
    return Bundle(meta=meta, generator=generator, device=str(device), cpu_path=cpu_path)


def load_discriminator(uri: str, storage_options: dict | None = None, device: str = "cpu") -> torch.nn.Module:
    """The GAN discriminator a bundle carries (sha256-checked, never unpickled), in eval mode."""
    from genart.models.gan import Discriminator

    fs, path = get_fs(uri, storage_options)
    meta = parse_meta(read_file(fs, path, META, uri), uri)
    d = meta.get("discriminator")
    if not d:
        raise BundleError(
            f"bundle {redact(uri)} carries no discriminator ({meta['arch']} bundles exported by genart "
            f"{meta.get('genart_version', '?')}): use filter.scorer: classifier, or re-export it with "
            "`genart train` (GAN bundles now include discriminator.safetensors)"
        )
    build_d = lambda: Discriminator(**{k: d[k] for k in check.D_KEYS})  # noqa: E731
    blob = read_file(fs, path, d["file"], uri, check.max_bytes(check.expected_tensors(build_d)))
    if hashlib.sha256(blob).hexdigest() != d["sha256"]:
        raise BundleError(
            f"bundle {redact(uri)}: {d['file']} does not match the sha256 in model.json; re-export the bundle"
        )
    disc = _load_weights(
        blob,
        build_d,
        redact(uri),
        d["file"],
        "discriminator",
    )
    return disc.eval().to(device)
