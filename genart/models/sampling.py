"""Seeds -> latents -> uint8 images. Plain PyTorch: the replica actor and `load_bundle` both call this."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import numpy as np
import torch

from genart.cpu_path import BLOCK, CPU_PATH, check_cpu_path


def latents(seeds, latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    """float32 (N, latent_dim) on the CPU: one standard-normal latent per seed (N ints, any 64-bit value torch
    takes), each drawn from its own torch.Generator (so order and batching never matter), clamped to
    [-truncation, truncation] when truncation is set."""
    out = torch.empty(len(seeds), latent_dim)
    gen = torch.Generator()
    for i, s in enumerate(seeds):
        gen.manual_seed(int(s))
        torch.randn(latent_dim, generator=gen, out=out[i])  # in place: the same numbers, ~25% faster
    if truncation is not None:
        out.clamp_(-truncation, truncation)
    return out


def quantize(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float in [-1, 1] (clamped) -> uint8 (N, H, W, C) on the images' device: round((x + 1) *
    127.5), so -1 -> 0 and 1 -> 255 (4x fewer bytes to copy off a GPU)."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float in [-1, 1] -> uint8 (N, H, W, C) NumPy array (quantize, copied to the CPU)."""
    return quantize(images).cpu().numpy()


def inputs(generator: torch.nn.Module, seeds, class_ids=None, truncation: float | None = None, device="cpu"):
    """The generator's inputs for N `seeds`: (z float32 (N, latent_dim), y int64 (N,) or None), both on
    `device`. Raises ValueError when a conditional model gets no class ids, their count is not N, or one is
    outside 0..num_classes-1."""
    z = latents(seeds, generator.latent_dim, truncation).to(device)
    y = None
    if generator.num_classes:
        if class_ids is None:
            raise ValueError(
                f"this model is class-conditional ({generator.num_classes} classes): pass class_ids"
            )
        y = torch.as_tensor(np.asarray(class_ids), dtype=torch.long, device=device)
        if len(y) != len(z):
            raise ValueError(f"got {len(z)} seeds but {len(y)} class ids")
        if int(y.min()) < 0 or int(y.max()) >= generator.num_classes:
            raise ValueError(f"class ids must be in 0..{generator.num_classes - 1}")
    return z, y


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 inside the block (restored after). Kernels pick their algorithm,
    and split their work, by thread count (e.g. PyTorch runs a 1x1 convolution with oneDNN only when
    several threads are used): a fixed count keeps each item's arithmetic the same in every process."""
    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


def memory_format_of(path: str) -> torch.memory_format:
    """The weights' memory format each CPU path computes with: channels_last (NHWC) for block16."""
    return torch.channels_last if check_cpu_path(path) == "block16" else torch.contiguous_format


def in_memory_format(model: torch.nn.Module, fmt: torch.memory_format) -> torch.nn.Module:
    """`model` when every 4-d weight is already in `fmt`, else a converted copy (the module itself is
    never changed: a training generator or another job's engine may share it)."""
    weights = [p for p in model.parameters() if p.dim() == 4]
    if all(p.is_contiguous(memory_format=fmt) for p in weights):
        return model
    return copy.deepcopy(model).to(memory_format=fmt)


def forward_per_item(model, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """`model(z, y)` for z (N, latent_dim), y (N,) or None, computed one item at a time on one thread ->
    (N, C, H, W) float in the model's output range, so that each item's floats,
    and so its bytes, depend only on its own inputs, never on the batch it came in (cpu_path "item").

    Why not one batched call: CPU kernels choose their algorithm and blocking by batch size (a matrix-vector
    kernel for one row, different GEMM blocking for 3 rows than for 256, oneDNN or the native convolution
    by batch size), so the same item rounds differently in different batches and about 2% of items get a pixel one level
    off (11 of 512 on the trained digits cGAN). `genart bench generate` shows what this costs.
    """
    with one_thread():
        return torch.cat([model(z[i : i + 1], None if y is None else y[i : i + 1]) for i in range(len(z))])


def forward_blocks(model, z: torch.Tensor, y: torch.Tensor | None, block: int = BLOCK) -> torch.Tensor:
    """`model(z, y)` for z (N, latent_dim), y (N,) int64 or (N, classes) float or None, computed in calls of
    exactly `block` rows on one thread, the last block padded with zero rows (dropped from the result) ->
    (N, C, H, W) float (cpu_path "block16" with a channels_last model).

    Kernels choose their algorithm by shape, not by the values of other rows, so with every call the same
    shape an item's floats depend only on its own inputs: not on the batch it came in, its place in its
    block, or the rows beside it (checked per architecture by tests/generation/test_exact.py). Blocks of
    16 let oneDNN use its batched NHWC convolutions: 1.5-3.5x faster per item than one at a time on the
    shipped 32 px models (`genart bench generate`'s exact table).
    """
    parts = []
    with one_thread():
        for lo in range(0, len(z), block):
            zb, yb = z[lo : lo + block], None if y is None else y[lo : lo + block]
            n = len(zb)
            if n < block:
                zb = torch.cat([zb, zb.new_zeros((block - n, *zb.shape[1:]))])
                yb = None if yb is None else torch.cat([yb, yb.new_zeros((block - n, *yb.shape[1:]))])
            parts.append(model(zb, yb)[:n])
    return torch.cat(parts)


def forward_cpu(model, z: torch.Tensor, y: torch.Tensor | None, path: str = CPU_PATH) -> torch.Tensor:
    """The generator on the CPU by `path` (CPU_PATHS), the model first put into that path's memory format
    (a copy when it is not): (N, C, H, W) float whose items never depend on the batch."""
    model = in_memory_format(model, memory_format_of(path))
    if path == "block16":
        return forward_blocks(model, z, y)
    return forward_per_item(model, z, y)


@torch.inference_mode()
def sample(
    generator: torch.nn.Module,
    seeds,
    class_ids=None,
    truncation: float | None = None,
    device="cpu",
    cpu_path: str = CPU_PATH,
):
    """Run the generator on N `seeds` (and N class ids for conditional models) -> uint8 (N, H, W, C) NumPy.
    Raises ValueError for class ids `inputs` refuses or an unknown `cpu_path`.

    The reference path: fp32 on the CPU by `cpu_path` (`forward_cpu`: blocks of 16 rows NHWC on one thread,
    or "item" for outputs whose _job.json has no cpu_path), so item i's bytes are the same in any batch, process or
    job.
    `genart.generation.engine.Engine` is the fast path (bf16 autocast, channels_last, torch.compile, pinned
    copies) and calls the same `inputs`/`quantize`.
    """
    z, y = inputs(generator, seeds, class_ids, truncation, device)
    if torch.device(device).type == "cpu":
        return to_uint8(forward_cpu(generator, z, y, cpu_path))
    return to_uint8(generator(z, y))
