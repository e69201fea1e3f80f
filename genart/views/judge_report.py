"""`genart eval BUNDLE --data CONFIG|SOURCE` for any labelled dataset: the judge (views/judge.py) trained on the
real images scores a model's samples. Plain Python (no Ray, no IO but the arrays it is given).

Figures (GAN-train / GAN-test: Shmelkov et al., "How good is my GAN?", ECCV 2018):
- real_test_acc: the judge's accuracy on held-out real images (the ceiling to compare with);
- gan_test_acc: its accuracy on class-conditional samples, an equal count per class (are samples
  recognisably of their class?); gan_test_ratio = gan_test_acc / real_test_acc;
- gan_train_acc: accuracy on the real test images of the same architecture trained only on samples
  (do samples cover the classes' variety?);
- frechet_distance, precision, recall (k = 3): in the judge's 64-d penultimate features, between the real
  held-out images (validation + test, n_real) and as many samples drawn with the same class of each (n_fake);
- diversity_ratio: mean pairwise pixel distance of those samples over that of the real held-out images.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genart.errors import ConfigError, DataError
from genart.views import judge as J

MAX_REAL = 6_000  # real images the judge splits (about 10 CPU-minutes of training at most on 2 cores)
SEED_A, SEED_B = 20_000_000, 30_000_000  # sample seeds away from those training grids and digits eval use
ARCHITECTURE = (
    "32x32 input; conv3x3-BN-ReLU-maxpool x3 (16, 32, 64); global average pool (64-d features); linear"
)

Generate = Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # (seeds, class ids) -> uint8 (N, H, W, C)


@dataclass(frozen=True)
class RealData:
    """Labelled real images: uint8 (N, H, W, C), int64 labels (N,) in 0..k-1, and the k class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, image_set) -> RealData:
        """From anything with .images, .labels and .class_names (genart.data.read's ImageSet). Raises DataError
        when it is unlabelled or a label has no class name."""
        names = tuple(image_set.class_names or ())
        labels = np.asarray(image_set.labels, dtype=np.int64)
        if not names or not len(labels) or labels.min() < 0:
            raise DataError(
                "the judge needs labelled images (class folders, a label column); these have none"
            )
        if labels.max() >= len(names):
            raise DataError(f"label {int(labels.max())} has no class name (names: {list(names)})")
        return cls(np.asarray(image_set.images), labels, names)


def check_compatible(real: RealData, meta: dict) -> None:
    """The bundle must make images shaped like the real ones, with as many classes (0 = unconditional).
    Raises ConfigError naming what differs."""
    h, w, c = real.images.shape[1:]
    if (h, w, c) != (meta["image_size"], meta["image_size"], meta["channels"]):
        raise ConfigError(
            f"--data: the real images are {h}x{w}x{c} but the bundle makes "
            f"{meta['image_size']}x{meta['image_size']}x{meta['channels']}"
        )
    k = meta["num_classes"]
    if k and k != len(real.class_names):
        raise ConfigError(
            f"--data: the bundle has {k} classes but the data has {len(real.class_names)}: "
            f"{', '.join(real.class_names)}"
        )


def _round(x: float) -> float:
    return round(float(x), 4)


def judge_model(
    generate: Generate, real: RealData, num_classes: int, samples: int, seed: int = 0
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Score a model (its `generate`) against `real`; `num_classes` is the model's (0 = unconditional: no
    GAN-test/GAN-train). Returns (report, samples uint8 (samples, H, W, C), their class ids or None).
    Raises DataError when a class has fewer than 3 real images."""
    names, k_real = real.class_names, len(real.class_names)
    total = len(real.labels)
    real = _subsample(real, seed)
    tr, va, te = J.stratified_split(real.labels, seed)
    judge = J.train_judge(
        real.images[tr], real.labels[tr], k_real, seed, val=(real.images[va], real.labels[va])
    )
    real_pred = judge.predict(real.images[te])
    real_acc = float((real_pred == real.labels[te]).mean())
    report: dict = {
        "judge": {
            "architecture": ARCHITECTURE,
            "seed": seed,
            "epochs": judge.epochs,
            "train": len(tr),
            "val": len(va),
            "test": len(te),
            "real_images": total,  # the judge used train + val + test of them (at most MAX_REAL)
        },
        "real_test_acc": _round(real_acc),
        "real_accuracy_per_class": J.per_class_accuracy(real_pred, real.labels[te], names),
    }
    ids_a = (np.arange(samples) % num_classes).astype(np.int64) if num_classes else None
    fake_a = generate(SEED_A + np.arange(samples, dtype=np.int64), ids_a)
    if num_classes:
        pred = judge.predict(fake_a)
        gan_test = float((pred == ids_a).mean())
        report["gan_test_acc"] = _round(gan_test)
        report["gan_test_ratio"] = _round(gan_test / real_acc) if real_acc else None
        report["accuracy_per_class"] = J.per_class_accuracy(pred, ids_a, names)
        report["gan_train_acc"] = _round(_gan_train(fake_a, ids_a, real, te, seed))
    held = np.concatenate([va, te])
    ids_b = real.labels[held] if num_classes else None
    fake_b = generate(SEED_B + np.arange(len(held), dtype=np.int64), ids_b)
    f_real, f_fake = judge.features(real.images[held]), judge.features(fake_b)
    precision, recall = J.precision_recall(f_real, f_fake)
    rng = np.random.default_rng(seed)
    report.update(
        frechet_distance=round(J.frechet_distance(f_real, f_fake), 3),
        precision=_round(precision),
        recall=_round(recall),
        n_real=len(held),
        n_fake=len(fake_b),
        diversity_ratio=round(J.diversity(fake_b, rng) / max(J.diversity(real.images[held], rng), 1e-12), 3),
    )
    return report, fake_a, ids_a


def _subsample(real: RealData, seed: int) -> RealData:
    """At most MAX_REAL of the real images (a seeded random subset in their order): the judge's CPU time and
    the k-NN distance matrices stay bounded for large collections."""
    if len(real.labels) <= MAX_REAL:
        return real
    keep = np.sort(np.random.default_rng(seed).permutation(len(real.labels))[:MAX_REAL])
    return RealData(real.images[keep], real.labels[keep], real.class_names)


def _gan_train(fake: np.ndarray, ids: np.ndarray, real: RealData, test: np.ndarray, seed: int) -> float:
    """Accuracy on the real test images of a judge trained on samples only (15% of them for early stopping)."""
    tr, va, te = J.stratified_split(ids, seed)
    fit = np.concatenate([tr, te])
    other = J.train_judge(fake[fit], ids[fit], len(real.class_names), seed, val=(fake[va], ids[va]))
    return J.accuracy(other, real.images[test], real.labels[test])


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _tile(image: np.ndarray, side: int) -> Image.Image:
    """One uint8 (H, W, C) image as an RGB tile `side` pixels wide (alpha composited on white)."""
    c = image.shape[-1]
    pil = Image.fromarray(image[..., 0] if c == 1 else image, mode={1: "L", 3: "RGB", 4: "RGBA"}[c])
    if c == 4:
        white = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, pil)
    pil = pil.convert("RGB")
    return pil.resize((side, side), Image.Resampling.NEAREST) if pil.size != (side, side) else pil


def class_grids_png(
    images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], per_class: int = 16, cols: int = 8
) -> bytes:
    """One PNG: for each class in order its name, then up to `per_class` of its images in rows of `cols`
    (tiles at least 48 px). images uint8 (N, H, W, C), labels int (N,). Raises ValueError when nothing is drawn."""
    side = max(48, images.shape[1])
    pad, text_h = 2, 18
    blocks = [(name, images[labels == c][:per_class]) for c, name in enumerate(class_names)]
    blocks = [(n, imgs) for n, imgs in blocks if len(imgs)]
    if not blocks:
        raise ValueError("no images to draw")
    heights = [text_h + math.ceil(len(imgs) / cols) * (side + pad) + pad for _, imgs in blocks]
    canvas = Image.new("RGB", (cols * (side + pad) + pad, sum(heights)), (32, 32, 32))
    draw, font = ImageDraw.Draw(canvas), _font(13)
    y = 0
    for (name, imgs), h in zip(blocks, heights):
        draw.text((pad + 2, y + 2), f"{name} ({len(imgs)})", fill=(255, 255, 255), font=font)
        for i, im in enumerate(imgs):
            r, q = divmod(i, cols)
            canvas.paste(_tile(im, side), (pad + q * (side + pad), y + text_h + r * (side + pad)))
        y += h
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def format_judge(r: dict) -> list[str]:
    """Lines of the text report for a judge report (below the model line)."""
    j = r["judge"]
    lines = [
        f"  judge                  CNN from scratch, seed {j['seed']}: {j['train']} train / {j['val']} val / "
        f"{j['test']} test real images, {j['epochs']} epochs",
        f"  real test accuracy     {r['real_test_acc']:.3f}  (the judge on held-out real images)",
    ]
    if "gan_test_acc" in r:
        ratio = "" if r["gan_test_ratio"] is None else f"  ({r['gan_test_ratio']:.2f} of real)"
        lines += [
            f"  GAN-test accuracy      {r['gan_test_acc']:.3f}{ratio}",
            f"  GAN-train accuracy     {r['gan_train_acc']:.3f}  (judge trained on samples, tested on real)",
            "  per class (GAN-test)   "
            + ", ".join(f"{n}: {a:.2f}" for n, a in r["accuracy_per_class"].items()),
        ]
    lines += [
        f"  frechet distance       {r['frechet_distance']:.3f}  (judge features; lower is better)",
        f"  precision / recall     {r['precision']:.3f} / {r['recall']:.3f}  (k=3, {r['n_real']} real vs {r['n_fake']} samples)",
        f"  diversity vs real      {r['diversity_ratio']:.3f}  (1.0 = as diverse as the data)",
    ]
    if "class_grids" in r:
        lines.append(f"  samples per class      {r['class_grids']}")
    return lines
