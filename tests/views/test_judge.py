"""The judge of `genart eval --data` on images the tests draw (coloured shapes): no Ray, no downloaded weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genart.errors import ConfigError, DataError
from genart.views import judge as J
from genart.views.judge_report import RealData, check_compatible, class_grids_png, judge_model
from tests.views.shapes import read_class_folders, shapes_dataset, write_class_folders

NAMES = ("Food & Drink", "Flags", "Smileys & Emotion")


@pytest.fixture(scope="module")
def shapes():
    return shapes_dataset(60, seed=0)


@pytest.fixture(scope="module")
def trained(shapes):
    x, y = shapes
    tr, va, te = J.stratified_split(y, 0)
    return J.train_judge(x[tr], y[tr], 3, seed=0, val=(x[va], y[va])), te


def test_the_split_is_stratified_seeded_and_disjoint():
    y = np.repeat([0, 1, 2], [20, 7, 3])
    tr, va, te = J.stratified_split(y, seed=0)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(30))
    assert [np.bincount(y[p], minlength=3).tolist() for p in (tr, va, te)] == [
        [14, 5, 1],
        [3, 1, 1],
        [3, 1, 1],
    ]
    assert all((a == b).all() for a, b in zip(J.stratified_split(y, 0), (tr, va, te)))
    assert not (J.stratified_split(y, 1)[2] == te).all()
    with pytest.raises(DataError, match="class 2 has 2 image"):
        J.stratified_split(np.array([0, 0, 0, 1, 1, 1, 2, 2]), 0)


def test_the_judge_learns_separable_classes(shapes, trained):
    x, y = shapes
    judge, te = trained
    assert J.accuracy(judge, x[te], y[te]) > 0.9
    fresh, _ = shapes_dataset(30, seed=7)  # a new draw: the judge generalises, it did not memorise
    assert J.accuracy(judge, fresh, np.repeat([0, 1, 2], 30)) > 0.9
    assert judge.features(x[:5]).shape == (5, J.FEATURE_DIM)


def test_training_is_deterministic_and_leaves_the_global_rng_alone(shapes):
    x, y = shapes
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = J.train_judge(x[:40], y[:40] % 3, 3, seed=5, max_epochs=2)
    assert torch.rand(1) == before  # fork_rng: the caller's torch RNG did not move
    b = J.train_judge(x[:40], y[:40] % 3, 3, seed=5, max_epochs=2)
    assert np.array_equal(a.features(x[:8]), b.features(x[:8]))


def test_precision_recall_of_real_vs_itself_is_one_and_vs_noise_zero(shapes, trained):
    x, _ = shapes
    judge, _ = trained
    real = judge.features(x)
    assert J.precision_recall(real, real) == (1.0, 1.0)
    other = judge.features(shapes_dataset(60, seed=1)[0])  # another draw of the same distribution
    p, r = J.precision_recall(real, other)
    assert p > 0.8 and r > 0.8
    noise = np.random.default_rng(0).integers(0, 256, x.shape, dtype=np.uint8)
    assert J.precision_recall(real, judge.features(noise)) == (0.0, 0.0)


def test_precision_recall_follow_the_paper_on_points():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # k=1 radii of real: 1, 1, 1, 1, 7; a fake at 17 is inside the ball of 10 (radius 7), one at 17.5 is not
    p, r = J.precision_recall(real, np.array([[0.5], [17.0], [17.5], [40.0]]), k=1)
    assert p == 0.5
    # fake radii (k=1): 0.5 -> 16.5, 17 -> 0.5, 17.5 -> 0.5, 40 -> 22.5: every real lies within 16.5 of 0.5
    assert r == 1.0
    with pytest.raises(ValueError):
        J.precision_recall(real[:1], real)


def test_frechet_distance_of_real_vs_itself_is_zero(shapes, trained):
    judge, _ = trained
    f = judge.features(shapes[0])
    assert J.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-3)
    noise = np.random.default_rng(0).integers(0, 256, shapes[0].shape, dtype=np.uint8)
    assert J.frechet_distance(f, judge.features(noise)) > 100 * abs(J.frechet_distance(f, f)) + 0.1


def test_per_class_accuracy_is_keyed_by_name():
    pred = np.array([0, 0, 1, 2, 2, 2])
    labels = np.array([0, 1, 1, 2, 2, 0])
    assert J.per_class_accuracy(pred, labels, NAMES) == {
        "Food & Drink": 0.5,
        "Flags": 0.5,
        "Smileys & Emotion": 1.0,
    }


def _real_from_folders(tmp_path, per_class=45):
    """Shapes written as class folders with the names above, read back by the tests' minimal reader."""
    x, y = shapes_dataset(per_class, seed=3)
    root = write_class_folders(tmp_path / "art", x, y, NAMES)
    images, labels, names = read_class_folders(root)
    return RealData(images, labels, names)


def test_judge_model_reports_names_and_scores_a_perfect_generator(tmp_path):
    real = _real_from_folders(tmp_path)
    assert real.class_names == ("Flags", "Food & Drink", "Smileys & Emotion")  # folder names, sorted
    kind = {0: 1, 1: 0, 2: 2}  # class id (sorted names) -> shape drawn for it

    def perfect(seeds, class_ids):  # a "model" whose samples are fresh draws of the real distribution
        rng = np.random.default_rng(int(seeds[0]))
        from tests.views.shapes import shape_image

        return np.stack([shape_image(kind[int(c)], rng) for c in class_ids])

    report, fake, ids = judge_model(perfect, real, num_classes=3, samples=90, seed=0)
    assert fake.shape == (90, 32, 32, 3) and np.bincount(ids).tolist() == [30, 30, 30]
    assert list(report["accuracy_per_class"]) == list(real.class_names)
    assert list(report["real_accuracy_per_class"]) == list(real.class_names)
    assert report["real_test_acc"] > 0.9 and report["gan_test_acc"] > 0.8 and report["gan_train_acc"] > 0.8
    assert report["gan_test_ratio"] == pytest.approx(
        report["gan_test_acc"] / report["real_test_acc"], abs=1e-3
    )
    assert report["n_real"] == report["n_fake"] == 42  # validation + test: 7 + 7 per class
    assert report["precision"] > 0.7 and report["recall"] > 0.7
    assert 0.8 < report["diversity_ratio"] < 1.25
    json.dumps(report)  # eval.json holds it as is

    def noise(seeds, class_ids):
        return np.random.default_rng(0).integers(0, 256, (len(seeds), 32, 32, 3), dtype=np.uint8)

    bad, _, _ = judge_model(noise, real, num_classes=3, samples=30, seed=0)
    assert bad["precision"] == 0.0 and bad["recall"] == 0.0
    assert bad["frechet_distance"] > 10 * report["frechet_distance"]
    assert bad["real_test_acc"] == report["real_test_acc"]  # the same seed trains the same judge


def test_unlabelled_or_mismatched_data_is_refused():
    class Unlabelled:
        images = np.zeros((3, 8, 8, 3), np.uint8)
        labels = np.full(3, -1)
        class_names = None

    with pytest.raises(DataError, match="needs labelled images"):
        RealData.of(Unlabelled())
    real = RealData(np.zeros((6, 32, 32, 3), np.uint8), np.array([0, 0, 0, 1, 1, 1]), ("a", "b"))
    meta = {"image_size": 32, "channels": 3, "num_classes": 3}
    with pytest.raises(ConfigError, match="^--data: the bundle has 3 classes but the data has 2: a, b$"):
        check_compatible(real, meta)
    with pytest.raises(ConfigError, match="real images are 32x32x3 but the bundle makes 64x64x3"):
        check_compatible(real, {**meta, "image_size": 64, "num_classes": 2})


def test_class_grids_draw_every_class_with_its_name(tmp_path):
    x, y = shapes_dataset(20, seed=0)
    png = class_grids_png(x, y, NAMES, per_class=16, cols=8)
    (tmp_path / "g.png").write_bytes(png)
    im = Image.open(tmp_path / "g.png")
    # 3 blocks of (18 px of name + 2 rows of (48 + 2) + 2), 8 tiles of 48 + 2 wide
    assert im.size == (8 * 50 + 2, 3 * (18 + 2 * 50 + 2))
    arr = np.asarray(im)
    assert (arr[2:16, 2:120] > 200).any(axis=-1).sum() > 30  # the first name is drawn in white
    blank = class_grids_png(x, y, NAMES[:2] + ("",), per_class=16, cols=8)
    assert Image.open(__import__("io").BytesIO(blank)).size == im.size
    rgba = np.concatenate([x, np.zeros(x.shape[:3] + (1,), np.uint8)], -1)  # fully transparent: white tiles
    arr = np.asarray(Image.open(__import__("io").BytesIO(class_grids_png(rgba, y, NAMES))))
    assert (arr[18:66, 2:50] == 255).all()  # the first tile: below the 18 px name, 2 px from the left


def test_radii_in_chunks_equal_the_whole_matrix():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1500, 4)), rng.normal(size=(1300, 4)) + 0.5
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    radii = np.sort(d, axis=1)[:, 2]  # the 3rd nearest other point
    assert np.allclose(J._kth_radii(a, 3), radii)
    inside = (np.linalg.norm(b[:, None] - a[None], axis=-1) <= radii[None]).any(1).mean()
    assert J.precision_recall(a, b)[0] == pytest.approx(inside)


def test_large_collections_are_subsampled_for_the_judge(monkeypatch):
    from genart.views import judge_report

    monkeypatch.setattr(judge_report, "MAX_REAL", 50)
    x, y = shapes_dataset(40, seed=0)
    small = judge_report._subsample(RealData(x, y, NAMES), seed=0)
    assert len(small.labels) == 50 and small.class_names == NAMES
    assert sorted(np.bincount(small.labels).tolist()) != [0, 0, 50]  # a random subset, not the first class
    whole = RealData(x[:50], y[:50], NAMES)
    assert judge_report._subsample(whole, 0) is whole


def test_eval_reads_only_a_sample_of_a_large_collection(monkeypatch, tmp_path):
    from PIL import Image

    from genart.views import eval_data

    for c in range(3):
        for i in range(30):
            (tmp_path / "art" / f"k{c}").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (c * 80, i, 0)).save(tmp_path / "art" / f"k{c}" / f"{i}.png")
    monkeypatch.setattr(eval_data, "MAX_REAL", 20)
    real = eval_data.read_real(eval_data.DataSpec(str(tmp_path / "art"), 8, 3))
    assert len(real.labels) == 20 and real.class_names == ("k0", "k1", "k2")
    assert len(set(real.labels.tolist())) == 3  # a random subset, not the first class's images
