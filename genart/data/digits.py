"""The built-in `digits` source: scikit-learn's bundled 8x8 digits (no download), upscaled, bright ink on dark."""

from __future__ import annotations

import numpy as np

CLASS_NAMES = [str(i) for i in range(10)]


def load_digits_arrays(image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """-> (images uint8 (N, S, S, 1), labels int64 (N,)). sklearn stores ink as high values (0..16)."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = torch.nn.functional.interpolate(
        x, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return images, digits.target.astype(np.int64)


def pool_to_8x8(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, C) -> float (N, 64) on sklearn's 0..16 scale, for classifiers trained on the real digits."""
    import torch

    x = torch.from_numpy(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2).mean(1, keepdim=True)
    x = torch.nn.functional.adaptive_avg_pool2d(x, 8) / 255.0 * 16.0
    return x.reshape(len(images), 64).numpy()
