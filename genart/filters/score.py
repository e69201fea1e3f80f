"""Per-item measures of candidates: the quality score and the 64-bit perceptual hash. Plain Python, no Ray.

The score is the probability a classifier gives the requested class. The judge used by the filter is a
logistic regression on the real 8x8 digits, deliberately not the SVC that `genart eval` reports with,
so the SVC's accuracy on the kept items is an independent measure of what the filter bought.
"""

from __future__ import annotations

import numpy as np

from genart.data.digits import pool_to_8x8
from genart.errors import ConfigError
from genart.images import decode, flatten_alpha, to_pil
from genart.storage.fs import redact


def decode_images(blobs: list[bytes]) -> np.ndarray:
    """N encoded images (PNG, WebP, JPEG bytes) of one size -> uint8 (N, H, W, C) (C = 1 for grayscale);
    uint8 (0, 1, 1, 1) for none. Raises one of genart.images.DECODE_ERRORS for bytes that are not an image,
    ValueError when the sizes differ."""
    arrays = [decode(b) for b in blobs]
    return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 1), np.uint8)


def phash64(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) images, C 1, 3 or 4 (RGBA is hashed as shown over white, so the colour hidden under
    transparent pixels never counts) -> uint64 (N,): imagehash's DCT perceptual hash (pHash: the
    image to grayscale 32x32, its 2-D DCT, the 8x8 lowest frequencies compared with their median; Zauner,
    "Implementation and benchmarking of perceptual image hash functions", 2010), bit i of the 8x8 hash at
    bit 63 - i. Near-duplicates differ in few bits (genart.filters.dedupe.hamming)."""
    import imagehash

    out = np.empty(len(images), dtype=np.uint64)
    for i, img in enumerate(images):
        pil = to_pil(flatten_alpha(img, background=255))
        bits = imagehash.phash(pil, hash_size=8).hash.flatten()
        out[i] = np.uint64(int("".join("1" if b else "0" for b in bits), 2))
    return out


class DigitsScorer:
    """P(requested class | image) from a classifier fitted on scikit-learn's real digits (10 classes)."""

    def __init__(self, num_classes: int):
        if num_classes != 10:
            raise ConfigError(
                f"filter.classifier: `digits` judges 10-class digit models; this model has {num_classes} classes. "
                "Set filter.min_score: null to synthesize without the quality filter"
            )
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        d = load_digits()
        # one BLAS thread: a multi-threaded BLAS sums in another order, so replicas on machines with other
        # core counts would fit (and score) differently, and a score at the threshold keep another draw
        with threadpool_limits(limits=1):
            self.clf = LogisticRegression(max_iter=3000, C=0.5).fit(d.data, d.target)

    def __call__(self, images: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) images and int (N,) requested classes in 0..9 -> float32 (N,) probabilities
        in [0, 1], each computed alone (so the same in any batch)."""
        if not len(images):
            return np.zeros(0, np.float32)
        # one row at a time: a batched matrix product rounds a row differently in different batches, and a
        # score at the threshold would then keep a different draw (so other bytes) for the same item
        from threadpoolctl import threadpool_limits

        x = pool_to_8x8(images)
        with threadpool_limits(limits=1):
            proba = np.concatenate([self.clf.predict_proba(x[i : i + 1]) for i in range(len(x))])
        col = np.searchsorted(self.clf.classes_, class_ids)
        return proba[np.arange(len(images)), col].astype(np.float32)


CALIBRATION_SEED = 0xCA11B8A7E  # seeds of the samples D's scores are ranked against (the same everywhere)


class DiscriminatorScorer:
    """The GAN discriminator's judgement as a score in [0, 1]: the share of the model's own samples of the same
    class whose logit D(x, y) is at most this image's (a within-class percentile rank).

    A raw sigmoid(D) is not comparable across classes: a projection discriminator scores some classes' fakes
    far lower than others', so one threshold would reject whole classes. Ranking each logit among D's logits
    for `per_class` calibration samples of its class (fixed seeds, so every replica ranks the same way) makes
    `min_score: 0.7` mean "the best 30% of what the model makes, by D, in every class".
    """

    def __init__(self, model_uri: str, storage_options: dict | None, device: str, generate, num_classes: int):
        from genart.bundle import load_discriminator
        from genart.ids import item_seeds

        self.device = device
        self.disc = load_discriminator(model_uri, storage_options, device)
        per_class = max(64, min(256, 4096 // max(1, num_classes)))
        seeds = item_seeds(CALIBRATION_SEED, np.arange(per_class))
        self.table: dict[int | None, np.ndarray] = {}
        for c in range(num_classes) if num_classes else [None]:
            cls = None if c is None else np.full(per_class, c, np.int64)
            self.table[c] = np.sort(self.logits(generate(seeds, cls), cls))

    def logits(self, images: np.ndarray, class_ids: np.ndarray | None) -> np.ndarray:
        """uint8 (N, H, W, C) images (and int (N,) classes for a conditional D) -> float32 (N,) raw logits
        D(x, y), pixels scaled to [-1, 1] as in training; on CPU one item at a time (batch-independent)."""
        import torch

        from genart.models.sampling import forward_per_item

        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2)
        x = x.float() / 127.5 - 1.0
        y = None if class_ids is None else torch.as_tensor(np.asarray(class_ids), dtype=torch.long)
        y = None if y is None else y.to(self.device)
        with torch.inference_mode():
            if x.device.type == "cpu":  # each item alone, as the generator: its score (so the kept draw) is
                return forward_per_item(self.disc, x, y).float().numpy()  # the same in any batch
            return self.disc(x, y).float().cpu().numpy()

    def __call__(self, images: np.ndarray, class_ids: np.ndarray | None) -> np.ndarray:
        """uint8 (N, H, W, C) images (int (N,) classes or None) -> float32 (N,) in [0, 1]: each logit's rank
        among its class's calibration logits (the share at most it). KeyError for a class not calibrated."""
        if not len(images):
            return np.zeros(0, np.float32)
        raw = self.logits(images, class_ids)
        out = np.empty(len(raw), np.float32)
        keys = [None] * len(raw) if class_ids is None else [int(c) for c in class_ids]
        for k in set(keys):
            idx = np.flatnonzero(np.asarray([key == k for key in keys]))
            ref = self.table[k]
            out[idx] = np.searchsorted(ref, raw[idx], side="right") / len(ref)
        return out


def _training_source(meta: dict) -> str:
    return str((meta.get("training") or {}).get("data", {}).get("source", "none"))


def is_digits_model(meta: dict) -> bool:
    """Whether the digits classifiers can judge this bundle: 10 classes, trained on the built-in digits (or
    untrained, as in tests)."""
    return meta.get("num_classes") == 10 and _training_source(meta) in ("digits", "none")


def check_filter(flt, meta: dict, model_uri: str) -> None:
    """ConfigError for a quality filter that cannot work with this bundle (before any replica starts)."""
    if flt.min_score is None:
        return
    if flt.scorer == "discriminator":
        if not meta.get("discriminator"):
            raise ConfigError(
                f"filter.scorer: discriminator, but the bundle at {model_uri} carries no discriminator "
                "(VAE bundles have none, nor GAN bundles exported before discriminators were included); use "
                "filter.scorer: classifier, or re-export the GAN with `genart train`"
            )
        return
    if not meta["num_classes"]:
        raise ConfigError(
            "filter.scorer: classifier scores how well an image matches its requested class, but this model "
            "is unconditional (num_classes 0); use filter.scorer: discriminator (GAN bundles) or set "
            "filter.min_score: null"
        )
    source = _training_source(meta)
    if source not in ("digits", "none"):
        raise ConfigError(
            f"filter.classifier: digits judges models of the built-in digits; this bundle was trained on "
            f"{source}. Use filter.scorer: discriminator (GAN bundles) or set filter.min_score: null"
        )
    if meta["num_classes"] != 10:
        raise ConfigError(
            f"filter.classifier: `digits` judges 10-class digit models; this model has {meta['num_classes']} "
            "classes. Use filter.scorer: discriminator or set filter.min_score: null"
        )


def make_scorer(
    flt, meta: dict, model_uri: str, storage_options: dict | None = None, device: str = "cpu", generate=None
):
    """The scorer a quality filter asks for, or None when filter.min_score is null. `generate(seeds, class_ids)`
    makes the discriminator's calibration samples (default: the bundle's own generator, loaded here)."""
    if flt.min_score is None:
        return None
    check_filter(flt, meta, redact(model_uri))
    if flt.scorer == "discriminator":
        if generate is None:
            from genart.bundle import load_bundle

            generate = load_bundle(model_uri, storage_options, device).generate
        return DiscriminatorScorer(model_uri, storage_options, device, generate, meta["num_classes"])
    return DigitsScorer(meta["num_classes"])


def digit_classifier():
    """SVC on scikit-learn's real 8x8 digits: the independent judge of class-conditional samples."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    d = load_digits()
    return SVC(gamma=0.001).fit(d.data, d.target)


def class_accuracy(images: np.ndarray, class_ids: np.ndarray, clf=None) -> tuple[float, dict[int, float]]:
    """uint8 (N, H, W, C) digit images and int (N,) requested classes -> (share of images `clf` (default the
    SVC of digit_classifier) labels as requested, {class: that share within the class}); N >= 1."""
    clf = clf or digit_classifier()
    pred = clf.predict(pool_to_8x8(images))
    per = {int(c): float((pred[class_ids == c] == c).mean()) for c in np.unique(class_ids)}
    return float((pred == class_ids).mean()), per
