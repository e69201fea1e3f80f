"""`genart eval BUNDLE --data CONFIG|SOURCE [--inception-weights PATH]`: digits unchanged, the judge's report on
a real (untrained) bundle, and one-line errors with exit codes."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from genart.bundle import load_bundle, save_untrained_bundle
from genart.bundle.store import TINY_DCGAN
from genart.cli import main
from genart.errors import ConfigError
from genart.views import eval_data
from genart.views.evaluate import evaluate, format_report, judge_report
from genart.views.judge_report import RealData
from tests.conftest import make_tiny_bundle
from tests.views.shapes import read_class_folders, shapes_dataset, write_class_folders

NAMES = ("Food & Drink", "Flags", "Smileys & Emotion")
HAS_READER = importlib.util.find_spec("genart.data.read") is not None


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_eval_on_digits_is_unchanged(tmp_path):
    """The digits report of eval before the judge existed (same bundle, same samples: same figures)."""
    bundle = str(tmp_path / "b")
    make_tiny_bundle(bundle)
    report = evaluate(bundle, samples=50, out=str(tmp_path / "e"))
    assert list(report) == [
        "model_id",
        "arch",
        "samples",
        "frechet_distance",
        "diversity_ratio",
        "accuracy",
        "accuracy_per_class",
    ]
    assert report["frechet_distance"] == pytest.approx(2622.923, rel=1e-3)
    assert (report["diversity_ratio"], report["accuracy"]) == (0.007, 0.1)
    assert report["accuracy_per_class"] == {str(c): float(c == 9) for c in range(10)}
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["eval.json"]  # no class grids for digits
    assert json.loads((tmp_path / "e" / "eval.json").read_text()) == report
    assert "classifier accuracy    0.100" in format_report(report)


@pytest.fixture
def rgb_bundle(tmp_path):
    """An untrained 32x32 RGB conditional DCGAN with 3 classes (what `genart eval` reports as the baseline)."""
    uri = str(tmp_path / "rgb")
    save_untrained_bundle(uri, {**TINY_DCGAN, "channels": 3, "num_classes": 3}, seed=1)
    return uri


def test_the_judge_report_of_an_untrained_model(rgb_bundle, tmp_path):
    x, y = shapes_dataset(30, seed=2)
    images, labels, names = read_class_folders(write_class_folders(tmp_path / "art", x, y, NAMES))
    real = RealData(images, labels, names)
    report, fake, grids = judge_report(load_bundle(rgb_bundle), real, samples=60, where="art")
    assert fake.shape == (60, 32, 32, 3)
    assert list(report)[:4] == ["model_id", "arch", "samples", "data"] and report["data"] == "art"
    assert list(report["accuracy_per_class"]) == ["Flags", "Food & Drink", "Smileys & Emotion"]
    assert report["real_test_acc"] > 0.9  # the judge knows the shapes
    assert (
        report["precision"] < 0.2 and report["recall"] < 0.2
    )  # noise from an untrained G is off the manifold
    assert report["n_real"] == report["n_fake"] == 24  # round(0.15 * 30) = 4 validation + 4 test per class
    with Image.open(io.BytesIO(grids)) as im:
        assert im.size == (8 * 50 + 2, 3 * (18 + 2 * 50 + 2))  # 3 classes x 16 of their 20 samples, rows of 8
    text = format_report(report)
    assert "GAN-test accuracy" in text and "per class (GAN-test)   Flags: " in text
    assert "precision / recall" in text and "(k=3, 24 real vs 24 samples)" in text
    json.dumps(report)


def test_a_bundle_that_does_not_fit_the_data_is_refused(tmp_path):
    bundle = str(tmp_path / "b")
    make_tiny_bundle(bundle)  # 32x32 grey, 10 classes
    x, y = shapes_dataset(5, seed=0)
    with pytest.raises(ConfigError, match="real images are 32x32x3 but the bundle makes 32x32x1"):
        judge_report(load_bundle(bundle), RealData(x, y, NAMES), samples=30, where="art")


def test_data_spec_from_a_train_config(tmp_path):
    cfg = tmp_path / "t.yaml"
    base = (
        "kind: train\noutput: out\nmodel:\n  arch: dcgan\n  image_size: 64\n  channels: 3\n  num_classes: 3\n"
    )
    cfg.write_text(base + "data:\n  source: s3://bucket/art\n")
    spec = eval_data.data_spec(str(cfg), {"image_size": 32, "channels": 1})
    assert (spec.source, spec.image_size, spec.channels, spec.storage_options) == (
        "s3://bucket/art",
        64,
        3,
        None,
    )
    cfg.write_text(base + "data:\n  source: digits\n")
    assert eval_data.data_spec(str(cfg), {}) is None  # a digits config keeps the SVC judge
    folder = tmp_path / "art"
    folder.mkdir()
    spec = eval_data.data_spec(str(folder), {"image_size": 32, "channels": 4})
    assert (spec.source, spec.image_size, spec.channels, spec.options) == (str(folder), 32, 4, {})


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--data", "cifar"],
            "error: --data cifar: no such train config or data source; pass digits, a `kind: train` config, "
            "a folder with one subfolder per class, or a Parquet file/folder URI\n",
        ),
        (
            ["--inception-weights", "nope.pth"],
            "error: --inception-weights nope.pth: no such file; pass a local FID Inception weights file "
            "(e.g. pt_inception-2015-12-05-6726825d.pth)\n",
        ),
    ],
)
def test_eval_argument_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = run("eval", str(tmp_path / "no-bundle"), *args)
    assert (res.exit_code, res.output) == (2, message)


def test_inception_weights_that_are_not_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    res = run("eval", "no-bundle", "--inception-weights", "junk.pth")
    assert res.exit_code == 2
    assert res.output.startswith("error: --inception-weights junk.pth: not a readable weights file (")
    assert res.output.count("\n") == 1
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    res = run("eval", "no-bundle", "--inception-weights", "other.pth")
    assert (res.exit_code, res.output) == (
        2,
        "error: --inception-weights other.pth: not FID Inception weights (no tensor Conv2d_1a_3x3.conv.weight)\n",
    )
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "w.pth")
    res = run("eval", "no-bundle", "--inception-weights", "w.pth")
    if importlib.util.find_spec("torchmetrics") is None:
        assert (res.exit_code, res.output) == (
            2,
            "error: --inception-weights needs torchmetrics' FID, which is not installed (pip install "
            "'torchmetrics[image]'); leave the option out to get the judge's Frechet distance only\n",
        )
    else:  # the weights pass the check: the next problem is the missing bundle
        assert res.exit_code == 1 and "no-bundle" in res.output


@pytest.mark.skipif(
    not HAS_READER, reason="genart.data.read (read_images) lands with the data reader of issue 12"
)
def test_eval_cli_on_class_folders_and_on_a_train_config(rgb_bundle, tmp_path):
    x, y = shapes_dataset(30, seed=2)
    art = write_class_folders(tmp_path / "art", x, y, NAMES)
    res = run("eval", rgb_bundle, "--data", str(art), "--samples", "60", "--out", str(tmp_path / "e"))
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert list(report["accuracy_per_class"]) == ["Flags", "Food & Drink", "Smileys & Emotion"]
    assert report["real_test_acc"] > 0.9 and report["n_real"] == 24
    with Image.open(tmp_path / "e" / "class_grids.png") as im:
        assert im.size == (8 * 50 + 2, 3 * (18 + 2 * 50 + 2))
    assert "GAN-test accuracy" in res.output
    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        "kind: train\noutput: out\nmodel:\n  arch: dcgan\n  image_size: 32\n  channels: 3\n  num_classes: 3\n"
        f"data:\n  source: {art}\n"
    )
    res = run("eval", rgb_bundle, "--data", str(cfg), "--samples", "60", "--out", str(tmp_path / "f"))
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "f" / "eval.json").read_text())
    assert {k: v for k, v in again.items() if k not in ("data", "class_grids")} == {
        k: v for k, v in report.items() if k not in ("data", "class_grids")
    }


def test_an_unconditional_model_gets_distances_but_no_gan_test(tmp_path):
    uri = str(tmp_path / "u")
    save_untrained_bundle(uri, {**TINY_DCGAN, "channels": 3, "num_classes": 0}, seed=1)
    x, y = shapes_dataset(20, seed=2)
    report, fake, grids = judge_report(load_bundle(uri), RealData(x, y, NAMES), samples=24, where="art")
    assert fake.shape == (24, 32, 32, 3)
    assert not {"gan_test_acc", "gan_train_acc", "accuracy_per_class"} & set(report)
    assert report["n_real"] == report["n_fake"] == 18  # 3 validation + 3 test per class
    assert list(report["real_accuracy_per_class"]) == list(NAMES)
    with Image.open(io.BytesIO(grids)) as im:
        assert im.size == (8 * 50 + 2, 18 + 2 * 50 + 2)  # one block: "samples (16)"
    text = format_report(report)
    assert "GAN-test" not in text and "frechet distance" in text
