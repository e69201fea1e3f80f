"""`genart eval BUNDLE`: how good is a model before a big job? Plain Python (no Ray).

Any labelled dataset (`--data CONFIG|SOURCE`): the CNN judge of views/judge.py, reported by
views/judge_report.py. The built-in digits keep this module's judge, for continuity:
- accuracy: an independent classifier (scikit-learn SVC trained on the real digits, 8x8) labels
  class-conditional samples; the share labelled as the requested class, overall and per class.
- frechet: Frechet distance between real and generated images in the feature space of a small
  classifier (an MLP's hidden layer) trained on the real data (Inception FID needs weights we cannot
  download here; with local weights a maintained FID library is the better choice).
- diversity: mean pairwise L2 distance between generated images over that of real images (1.0 = as diverse).
- loss curves: from the training metrics (OUTPUT/train/checkpoint_*/metrics.jsonl) to PNG.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np

from genart.bundle import load_bundle
from genart.config.bounds import int_in
from genart.data.digits import load_digits_arrays, pool_to_8x8
from genart.filters.score import class_accuracy
from genart.storage import safejson
from genart.storage.fs import get_fs, join, redact
from genart.views import eval_data, inception
from genart.views.judge import diversity, frechet_distance
from genart.views.judge_report import RealData, check_compatible, class_grids_png, format_judge, judge_model

log = logging.getLogger(__name__)

GRIDS = "class_grids.png"
MIN_SAMPLES, MAX_SAMPLES = 10, 50_000  # covariances and pairwise distances need a few; all are held in memory


def _feature_net(real8: np.ndarray, labels: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0).fit(real8, labels)


def _features(net, x8: np.ndarray) -> np.ndarray:
    return np.maximum(x8 @ net.coefs_[0] + net.intercepts_[0], 0)  # the ReLU hidden layer


def loss_curves_png(metrics: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in metrics[0] if k.startswith(("loss", "recon", "kl"))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [m["step"] for m in metrics]
    for k in keys:
        ax.plot(steps, [m[k] for m in metrics], label=k)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _training_metrics(bundle_uri: str) -> list[dict]:
    """metrics.jsonl of the newest checkpoint under the bundle's training output (OUTPUT/model -> OUTPUT/train).
    Raises StorageError when that file is not JSON lines of objects."""
    fs, path = get_fs(bundle_uri)
    train_dir = join(path.rstrip("/").rsplit("/", 1)[0], "train")
    if not fs.exists(train_dir):
        return []
    ckpts = sorted(
        p for p in fs.ls(train_dir, detail=False) if p.rsplit("/", 1)[-1].startswith("checkpoint_")
    )
    for ck in reversed(ckpts):
        mpath = join(ck, "metrics.jsonl")
        if fs.exists(mpath):
            text = fs.cat_file(mpath).decode("utf-8", errors="replace")
            return safejson.loads_lines(text, f"{redact(mpath)}")
    return []


def evaluate(
    bundle_uri: str,
    data: str = "digits",
    samples: int = 1000,
    out: str | None = None,
    inception_weights: str | None = None,
) -> dict:
    """Score `samples` generated images against the real data; writes eval.json (and loss curves; and
    class_grids.png for data other than digits). `data`: `digits` (the SVC judge), a `kind: train` config
    (its data.source, model.image_size and model.channels) or a data source (class folders, Parquet, any
    URI genart.data.read reads; read at the bundle's size). `inception_weights`: a local FID Inception file
    for the standard FID (needs torchmetrics). Returns the report. Raises ConfigError for `samples` outside
    MIN_SAMPLES..MAX_SAMPLES, a missing --data, bad Inception weights or a model that does not fit the data;
    DataError for unlabelled data; the readers' errors as they come."""
    int_in("--samples", samples, MIN_SAMPLES, MAX_SAMPLES)
    source = eval_data.check_data_arg(data)
    if inception_weights is not None:
        inception.check_weights(inception_weights)
        inception.require_library()
    bundle = load_bundle(bundle_uri)
    m = bundle.meta
    spec = eval_data.data_spec(source, m)
    grids = None
    if spec is None:
        report, real, fake = _digits_report(bundle, samples)
    else:
        real_data = eval_data.read_real(spec)
        report, fake, grids = judge_report(bundle, real_data, samples, spec.where)
        real = real_data.images
    if inception_weights is not None:
        report["inception_fid"] = round(inception.inception_fid(inception_weights, real, fake), 3)
    _write(report, bundle_uri, out, grids)
    return report


def judge_report(bundle, real: RealData, samples: int, where: str) -> tuple[dict, np.ndarray, bytes]:
    """The judge's report of a loaded bundle against labelled `real` data (read from `where`), its samples
    uint8 (samples, H, W, C) and their per-class grids (PNG bytes). Raises ConfigError when the bundle does
    not fit the data (views/judge_report.check_compatible), DataError for a class of under 3 images."""
    m = bundle.meta
    check_compatible(real, m)
    report, fake, ids = judge_model(bundle.generate, real, m["num_classes"], samples)
    report = {"model_id": m["model_id"], "arch": m["arch"], "samples": samples, "data": where, **report}
    if ids is None:  # an unconditional model: one block of samples
        return report, fake, class_grids_png(fake, np.zeros(len(fake), np.int64), ("samples",))
    return report, fake, class_grids_png(fake, ids, real.class_names)


def _digits_report(bundle, samples: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """The digits report (eval's SVC judge, MLP features), the real digits and the samples."""
    m = bundle.meta
    real, labels = load_digits_arrays(m["image_size"])
    seeds = np.arange(samples, dtype=np.int64) + 10_000_000  # away from the seeds training grids use
    k = m["num_classes"]
    class_ids = (np.arange(samples) % k) if k else None
    fake = bundle.generate(seeds, class_ids)
    rng = np.random.default_rng(0)
    real8, fake8 = pool_to_8x8(real), pool_to_8x8(fake)
    net = _feature_net(real8, labels)
    report = {
        "model_id": m["model_id"],
        "arch": m["arch"],
        "samples": samples,
        "frechet_distance": round(frechet_distance(_features(net, real8), _features(net, fake8)), 3),
        "diversity_ratio": round(diversity(fake, rng) / diversity(real, rng), 3),
    }
    if k:
        acc, per = class_accuracy(fake, class_ids)
        report["accuracy"] = round(acc, 4)
        report["accuracy_per_class"] = {str(c): round(a, 3) for c, a in per.items()}
    return report, real, fake


def _write(report: dict, bundle_uri: str, out: str | None, grids: bytes | None) -> None:
    """eval.json, loss_curves.png (when the training metrics are there) and class_grids.png into `out`."""
    fs, path = get_fs(out or bundle_uri)
    fs.makedirs(path, exist_ok=True)
    metrics = _training_metrics(bundle_uri)
    if metrics:
        with fs.open(join(path, "loss_curves.png"), "wb") as f:
            f.write(loss_curves_png(metrics))
        report["loss_curves"] = join(out or bundle_uri, "loss_curves.png")
    if grids is not None:
        fs.pipe_file(join(path, GRIDS), grids)
        report["class_grids"] = join(out or bundle_uri, GRIDS)
    with fs.open(join(path, "eval.json"), "w") as f:
        json.dump(report, f, indent=2)


def format_report(r: dict) -> str:
    lines = [f"model {r['model_id'][:12]}  ({r['arch']}, {r['samples']} samples)"]
    if "judge" in r:
        lines.append(f"  data                   {r['data']}")
        lines += format_judge(r)
        if "inception_fid" in r:
            lines.append(f"  inception FID          {r['inception_fid']:.3f}")
        if "loss_curves" in r:
            lines.append(f"  loss curves            {r['loss_curves']}")
        return "\n".join(lines)
    if "accuracy" in r:
        lines.append(f"  classifier accuracy    {r['accuracy']:.3f}")
        lines.append(
            "  per class              " + " ".join(f"{c}:{a:.2f}" for c, a in r["accuracy_per_class"].items())
        )
    lines.append(f"  frechet distance       {r['frechet_distance']:.3f}  (MLP features; lower is better)")
    lines.append(f"  diversity vs real      {r['diversity_ratio']:.3f}  (1.0 = as diverse as the data)")
    if "inception_fid" in r:
        lines.append(f"  inception FID          {r['inception_fid']:.3f}")
    if "loss_curves" in r:
        lines.append(f"  loss curves            {r['loss_curves']}")
    return "\n".join(lines)
