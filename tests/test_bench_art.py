"""`genart bench art DATA`: the folder config judged untrained / without / with train.augment, end to end on a
tiny 2-class folder drawn here (real local Ray, real training, the real judge); its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from genart.bench.art import FOLDER_CONFIG, HEADER, REPORT_KEYS, RUNS, bench_art, run_configs, table_rows
from genart.cli import main

NAMES = ("A & B", "C D")
TINY = [  # the smallest model the folder config allows: 32 px, narrow, small batches
    "model.image_size=32",
    "model.g_width=8",
    "model.d_width=8",
    "model.latent_dim=8",
    "train.batch_size=8",
    "train.ema_start=0",
]


def _sticker(kind: int, rng: np.random.Generator) -> Image.Image:
    """16x16 RGBA on a transparent background: a red disc (class 0) or a blue square (class 1), jittered."""
    im = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    x, y = (int(v) for v in rng.integers(2, 5, 2))
    box = (x, y, x + 9, y + 9)
    if kind == 0:
        d.ellipse(box, fill=(220, 30, 30, 255))
    else:
        d.rectangle(box, fill=(30, 60, 220, 255))
    return im


def _art(root: Path, classes=NAMES, per_class: int = 12) -> str:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            _sticker(k, rng).save(root / name / f"{i:02d}.png")
    return str(root)


def run(*args: str):
    return CliRunner().invoke(main, ["bench", "art", *args])


def test_the_runs_differ_only_in_augment_and_output(tmp_path):
    cfgs = run_configs("art", NAMES, "o", 7, TINY)
    assert list(cfgs) == ["augment", "no augment"]
    aug, off = cfgs["augment"], cfgs["no augment"]
    assert (aug.train.augment, off.train.augment) == ("color,translation,cutout", "")
    assert (aug.output, off.output) == ("o/augment", "o/no-augment")
    assert (aug.data.source, aug.model.num_classes, aug.train.steps, aug.train.checkpoint_every) == (
        "art",
        2,
        7,
        7,
    )
    assert (aug.data.fit, aug.model.image_size, aug.train.log_every) == ("pad", 32, 1)
    strip = {"output": True, "train": {"augment"}}
    assert aug.model_dump(exclude=strip) == off.model_dump(exclude=strip)


def test_table_rows_format_every_figure():
    row = {"run": "untrained", "train_minutes": 0.0, **dict.fromkeys(REPORT_KEYS, 0.5)}
    assert table_rows([row, {**row, "gan_test_ratio": None}]) == [
        ("untrained", "0.0", "0.500", "0.500", "0.50", "0.500", "0.50", "0.500", "0.500", "0.500"),
        ("untrained", "0.0", "0.500", "0.500", "-", "0.500", "0.50", "0.500", "0.500", "0.500"),
    ]


@pytest.mark.slow  # ~2 minutes: two Ray Train runs (make slow / make bench)
def test_bench_art_end_to_end_on_a_tiny_folder(ray_local, tmp_path, capsys):
    data, out = _art(tmp_path / "art"), tmp_path / "bench"
    (out / "augment").mkdir(parents=True)
    (out / "augment" / "stale.txt").write_text("from an earlier run")  # run folders start empty
    rows = bench_art(data, steps=2, samples=10, out=str(out), overrides=TINY)

    assert [r["run"] for r in rows] == list(RUNS) == ["untrained", "no augment", "augment"]
    assert [list(r) for r in rows] == [["run", "train_minutes", *REPORT_KEYS]] * 3
    assert rows[0]["train_minutes"] == 0.0 and all(r["train_minutes"] > 0 for r in rows[1:])
    assert sorted(p.name for p in out.iterdir()) == ["augment", "config.yaml", "no-augment", "untrained"]
    import yaml

    assert (
        yaml.safe_load((out / "config.yaml").read_text())["storage"]["options"] == {}
    )  # no credentials in OUT
    assert sorted(p.name for p in (out / "untrained").iterdir()) == ["class_grids.png", "eval.json", "model"]
    for name, row in zip(("untrained", "no-augment", "augment"), rows):
        report = json.loads((out / name / "eval.json").read_text())
        assert {k: report[k] for k in REPORT_KEYS} == {k: row[k] for k in REPORT_KEYS}
        assert list(report["accuracy_per_class"]) == list(NAMES)
        assert report["samples"] == 10 and report["judge"]["real_images"] == 24
        meta = json.loads((out / name / "model" / "model.json").read_text())
        assert meta["class_names"] == list(NAMES) and meta["num_classes"] == 2
        assert meta["training"]["steps"] == (0 if name == "untrained" else 2)
        with Image.open(out / name / "class_grids.png") as im:
            assert im.format == "PNG"
        if name != "untrained":
            assert sorted(p.name for p in (out / name).iterdir()) == [
                "_train.json",  # the training identity record (genart.training.identity)
                "class_grids.png",
                "eval.json",
                "loss_curves.png",
                "model",
                "train",
            ]
    printed = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(printed) if line.startswith("bench art: cgan-folder.yaml on "))
    assert printed[start].endswith(
        "(2 classes), 2 steps, 32px x3, augment color,translation,cutout, 10 samples; reports under "
        + str(out)
    )
    header, rule, *body = printed[start + 1 : start + 6]
    assert header.split() == " ".join(HEADER).split()
    assert [line.split("  ")[1].strip() for line in body] == list(RUNS)
    assert [line.strip() for line in body] == [
        "  ".join(c.ljust(len(h)) for c, h in zip(r, rule.split("  ")[1:])).strip() for r in table_rows(rows)
    ]


@pytest.mark.parametrize(
    "case,extra,message",
    [
        (
            "missing",
            [],
            "error: DATA {data}: no such folder or file; give a folder with one subfolder per class "
            "(or a labelled imagefolder or Parquet source)\n",
        ),
        (
            "one class",
            [],
            "error: DATA {data} has 1 class ('A & B'); bench art trains class-conditional models: "
            "give at least 2 classes (one subfolder per class)\n",
        ),
        (
            "loose",
            [],
            "error: DATA {data} has no class labels; bench art trains class-conditional models: "
            "give at least 2 classes (one subfolder per class)\n",
        ),
        ("two", ["--samples", "5"], "error: --samples must be an integer in 10..50000 (got 5)\n"),
        ("two", ["--steps", "0"], "error: --steps must be an integer in 1..100000 (got 0)\n"),
        (
            "two",
            ["--set", "model.image_size=33"],
            "error: {config}: invalid config\n  model.image_size: Input should be 32, 64, 128 or 256 (got 33)\n",
        ),
    ],
)
def test_errors_are_one_line_exit_2_before_any_work(tmp_path, case, extra, message):
    data = tmp_path / "art"
    if case == "one class":
        _art(data, NAMES[:1], per_class=3)
    elif case == "loose":
        data.mkdir()
        _sticker(0, np.random.default_rng(0)).save(data / "x.png")
    elif case == "two":
        _art(data, per_class=3)
    out = tmp_path / "bench"
    res = run(str(data), "--out", str(out), *extra)
    assert res.exit_code == 2
    assert res.output == message.format(
        data=data, config=FOLDER_CONFIG
    )  # a bad override: the config's message
    assert not out.exists()  # nothing written, nothing trained
