"""`genart walk`: a latent-space walk through a bundle's generator as an animated GIF. Every size is bounded
(ConfigError, exit 2, naming the bound) before any work: frames, seeds, upscaling, frame duration and the
pixels of all frames together."""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from genart.config.generate import class_id_of
from genart.config.loader import show
from genart.errors import ConfigError
from genart.images import flatten_alpha, to_pil
from genart.storage.hf import class_names_of
from genart.views.limits import (
    FRAME_MS,
    MAX_SEED,
    MAX_WALK_FRAMES,
    MAX_WALK_PIXELS,
    MAX_WALK_SCALE,
    MAX_WALK_SEEDS,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkSpec:
    seeds: tuple[int, ...]
    frames: int = 24  # per step between two seeds
    class_id: int | str | None = None  # an id, or a name of the bundle's class_names
    loop: bool = True  # come back to the first seed (a seamless animation_url)
    scale: int = 4  # nearest-neighbour upscaling of each frame
    frame_ms: int = 80

    def __post_init__(self):
        """Raises ConfigError for a value outside its bound (each bound keeps the walk's work small)."""
        bounds = [
            ("--frames", self.frames, 1, MAX_WALK_FRAMES),
            ("--scale", self.scale, 1, MAX_WALK_SCALE),
            ("--frame-ms", self.frame_ms, *FRAME_MS),
        ]
        for name, value, lo, hi in bounds:
            if not lo <= value <= hi:
                raise ConfigError(f"{name} {show(value)}: allowed {lo}..{hi}")
        if len(self.seeds) > MAX_WALK_SEEDS:
            raise ConfigError(f"--seeds: {len(self.seeds)} seeds; at most {MAX_WALK_SEEDS}")
        for seed in self.seeds:
            if not 0 <= seed <= MAX_SEED:
                raise ConfigError(f"--seeds: {show(seed)} is outside 0..{MAX_SEED}")
        if self.n_frames > MAX_WALK_FRAMES:
            raise ConfigError(
                f"--frames {self.frames} x {len(self.seeds)} seeds = {self.n_frames} frames; at most "
                f"{MAX_WALK_FRAMES} in all"
            )

    @property
    def n_frames(self) -> int:
        steps = len(self.seeds) if self.loop else len(self.seeds) - 1
        return self.frames * steps + (0 if self.loop else 1)


def slerp(a, b, t: float):
    """Spherical interpolation between latents a and b (linear when they are nearly parallel)."""
    import torch

    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def walk_frames(bundle, spec: WalkSpec) -> np.ndarray:
    """uint8 (F, H, W, C): F = frames x len(seeds) when looping, frames x (len(seeds) - 1) + 1 otherwise.
    `spec.class_id` may be a class name of the bundle (config.generate.class_id_of). Raises ConfigError for a
    bound, a class the model does not have or a missing class of a conditional model."""
    import torch

    from genart.models.sampling import latents, to_uint8

    gen = bundle.generator
    if len(spec.seeds) < 2:
        raise ConfigError("--seeds: give at least two seeds to walk between")
    size = int(bundle.meta.get("image_size", 0)) * spec.scale
    if spec.n_frames * size * size > MAX_WALK_PIXELS:
        raise ConfigError(
            f"--scale {spec.scale}, {spec.n_frames} frames of {size}x{size}: over {MAX_WALK_PIXELS} pixels in "
            "all; lower --scale or --frames"
        )
    if isinstance(spec.class_id, str):
        names = class_names_of(bundle.meta) if gen.num_classes else None
        spec = dataclasses.replace(spec, class_id=class_id_of(spec.class_id, names, "--class"))
    if gen.num_classes and spec.class_id is None:
        raise ConfigError(f"this model is class-conditional: pass --class 0..{gen.num_classes - 1}")
    if spec.class_id is not None and not (gen.num_classes and 0 <= spec.class_id < gen.num_classes):
        allowed = f"0..{gen.num_classes - 1}" if gen.num_classes else "none: the model is unconditional"
        raise ConfigError(f"--class {spec.class_id}: not a class of this model (classes: {allowed})")
    z = latents(spec.seeds, gen.latent_dim)
    order = list(range(len(z))) + ([0] if spec.loop else [])
    path = [slerp(z[a], z[b], k / spec.frames) for a, b in zip(order, order[1:]) for k in range(spec.frames)]
    if not spec.loop:
        path.append(z[-1])
    zs = torch.stack(path).to(bundle.device)
    out = []
    with torch.inference_mode():
        for lo in range(0, len(zs), 64):
            batch = zs[lo : lo + 64]
            y = None
            if gen.num_classes:
                y = torch.full((len(batch),), spec.class_id, dtype=torch.long, device=bundle.device)
            out.append(to_uint8(gen(batch, y)))
    return np.concatenate(out)


def gif_bytes(frames: np.ndarray, scale: int = 1, frame_ms: int = 80) -> bytes:
    """An endlessly looping GIF. (Pillow merges identical consecutive frames into one longer frame.)"""
    pics = []
    for f in frames:
        pil = to_pil(flatten_alpha(f))
        if scale > 1:
            pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
        pics.append(pil)
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


def walk(bundle_uri: str, out: str, spec: WalkSpec) -> tuple[str, int]:
    """Write the latent walk of `spec` through the bundle's generator as a GIF at `out`; (where, frames)."""
    from genart.warm_state import find_warm

    frames = None
    if find_warm() is not None:  # `genart up` runs: its warm replica draws them (ray imported only then)
        from genart.generation.warm import call_warm

        frames = call_warm(bundle_uri, None, walk_frames, spec)
    if frames is None:
        from genart.bundle import load_bundle

        frames = walk_frames(load_bundle(bundle_uri), spec)
    from genart.views.preview import write_bytes

    write_bytes(out, gif_bytes(frames, spec.scale, spec.frame_ms))
    log.debug("latent walk of %d frames: %s", len(frames), out)
    return out, len(frames)
