"""`genart eval --inception-weights PATH`: the standard FID through a maintained library, with Inception
weights the user has locally (genart downloads nothing). Plain Python (no Ray).

The library is torchmetrics (`FrechetInceptionDistance(feature_extractor_weights_path=...)`, built on
torch-fidelity's FID Inception, the TF 2015-12-05 graph ported to PyTorch). The weights are checked here
first, so a missing or wrong file is named before anything is generated; they are read with
`torch.load(weights_only=True)` (or safetensors), never unpickled.
"""

from __future__ import annotations

import os

import numpy as np

from genart.errors import ConfigError

OPTION = "--inception-weights"
KEY = "Conv2d_1a_3x3.conv.weight"  # the first layer of every FID Inception state dict (pytorch-fid, torch-fidelity)
INSTALL = "pip install 'torchmetrics[image]'"


def check_weights(path: str) -> None:
    """Raise ConfigError (one line naming the option) unless `path` is a readable file holding an FID Inception
    state dict (a mapping with the tensor Conv2d_1a_3x3.conv.weight)."""
    import torch

    if not os.path.isfile(path):
        raise ConfigError(
            f"{OPTION} {path}: no such file; pass a local FID Inception weights file "
            "(e.g. pt_inception-2015-12-05-6726825d.pth)"
        )
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as exc:  # torch.load raises UnpicklingError, RuntimeError, EOFError...: all mean "not weights"
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ConfigError(f"{OPTION} {path}: not a readable weights file ({why})") from exc
    if not isinstance(state, dict) or not isinstance(state.get(KEY), torch.Tensor):
        raise ConfigError(f"{OPTION} {path}: not FID Inception weights (no tensor {KEY})")


def require_library() -> None:
    """Raise ConfigError naming the option and what to install when torchmetrics' FID is not importable."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"{OPTION} needs torchmetrics' FID, which is not installed ({INSTALL}); leave the option out to "
            "get the judge's Frechet distance only"
        ) from exc


def inception_fid(path: str, real: np.ndarray, fake: np.ndarray) -> float:
    """The standard FID between uint8 (N, H, W, C) real and (M, H, W, C) fake images (grey repeated to RGB,
    alpha dropped), with the weights at `path`. Raises ConfigError as check_weights and require_library."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    def rgb(x: np.ndarray) -> torch.Tensor:
        x = np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x[..., :3]
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)

    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=path)
    for lo in range(0, len(real), 64):
        fid.update(rgb(real[lo : lo + 64]), real=True)
    for lo in range(0, len(fake), 64):
        fid.update(rgb(fake[lo : lo + 64]), real=False)
    return float(fid.compute())
