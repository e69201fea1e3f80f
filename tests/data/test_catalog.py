"""Listing class folders and imagefolder metadata the way torchvision and `datasets` write them (no Ray)."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

import genart
from genart.data.catalog import list_source
from genart.errors import ConfigError, DataError
from tests.data.imgs import enc, png, solid, sticker

NFD_EMOJI = unicodedata.normalize("NFD", "Émoji")  # what macOS writes


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def classes(tmp_path):
    """Class folders with the names users give them, plus the clutter tools leave behind."""
    root = tmp_path / "art"
    colours = {"Food & Drink": 10, "Animals & Nature": 20, "Animals": 30, "zebra": 40, NFD_EMOJI: 50}
    for folder, v in colours.items():
        _write(root / folder / "a.png", solid(v, 4, "L"))
    _write(root / "Animals" / "sub" / "x.png", solid(31, 4, "L"))  # nested: counts for Animals
    _write(root / "Animals" / "notes.txt", b"not an image")
    _write(root / ".ipynb_checkpoints" / "a-checkpoint.png", solid(99, 4, "L"))
    _write(root / "__MACOSX" / "Food & Drink" / "._a.png", b"resource fork")
    _write(root / ".DS_Store", b"\x00")
    _write(root / "loose.png", solid(77, 4, "L"))
    _write(root / "zebra" / ".hidden.png", solid(98, 4, "L"))
    return root


NAMES = ("Animals", "Animals & Nature", "Food & Drink", "zebra", "Émoji")


def test_class_folders_give_sorted_nfc_names_and_skip_hidden_entries(classes):
    cat = list_source(str(classes), None)
    assert cat.kind == "folder" and cat.class_names == NAMES
    assert [(r.name, r.label) for r in cat.refs] == [
        ("Animals/a.png", 0),
        ("Animals/sub/x.png", 0),
        ("Animals & Nature/a.png", 1),
        ("Food & Drink/a.png", 2),
        ("zebra/a.png", 3),
        ("Émoji/a.png", 4),
    ]
    assert cat.skipped == {
        "hidden": [".DS_Store", ".ipynb_checkpoints/", "__MACOSX/", "zebra/.hidden.png"],
        "outside_class_folder": ["loose.png"],
        "extension": ["Animals/notes.txt"],
    }


def test_read_images_labels_pixels_and_report(classes):
    got = genart.read_images(str(classes), 4, 1)
    assert got.class_names == NAMES
    assert got.labels.tolist() == [0, 0, 1, 2, 3, 4] and got.labels.dtype == np.int64
    assert got.images.dtype == np.uint8 and got.images.shape == (6, 4, 4, 1)
    assert got.images[:, 0, 0, 0].tolist() == [30, 31, 20, 10, 40, 50]
    assert got.report.per_class == {
        "Animals": 2,
        "Animals & Nature": 1,
        "Food & Drink": 1,
        "zebra": 1,
        "Émoji": 1,
    }
    assert got.report.skipped == {"hidden": 4, "outside_class_folder": 1, "extension": 1}


def test_an_empty_class_folder_is_named(classes):
    (classes / "Flags").mkdir()
    (classes / "Flags" / "readme.txt").write_text("no images yet")
    with pytest.raises(DataError, match=r"class folders 'Flags' hold no image files"):
        list_source(str(classes), None)


def test_a_flat_folder_and_a_glob_are_unlabelled(tmp_path):
    for i in range(3):
        _write(tmp_path / "flat" / f"{i}.png", solid(i, 4, "L"))
    got = genart.read_images(str(tmp_path / "flat"), 4, 3)
    assert got.class_names is None and got.labels.tolist() == [-1, -1, -1]
    assert got.images[:, 0, 0].tolist() == [[0, 0, 0], [1, 1, 1], [2, 2, 2]]
    assert genart.read_images(str(tmp_path / "flat" / "[12].png"), 4, 3).labels.tolist() == [-1, -1]


def test_a_mixed_folder_decodes_to_one_array(tmp_path):
    from PIL import Image

    files = {
        "l.png": solid(100, 6, "L"),
        "rgb.jpg": enc(Image.new("RGB", (6, 6), (0, 200, 0)), "JPEG", quality=100),
        "rgba.png": sticker(6),
        "p.gif": enc(Image.new("P", (6, 6), 0)),
        "la.png": png(np.dstack([np.full((6, 6), 60, np.uint8), np.full((6, 6), 255, np.uint8)]), "LA"),
        "cmyk.jpg": enc(Image.new("CMYK", (6, 6), (0, 0, 0, 0)), "JPEG", quality=100),
    }
    for name, data in files.items():
        _write(tmp_path / "mixed" / "one" / name, data)
    got = genart.read_images(str(tmp_path / "mixed"), 6, 3)
    assert got.images.shape == (6, 6, 6, 3) and got.report.count == 6
    rgba = genart.read_images(str(tmp_path / "mixed"), 6, 4)
    assert rgba.images.shape == (6, 6, 6, 4) and rgba.report.converted == {
        "alpha": 2,
        "cmyk": 1,
        "palette": 1,
    }
    alpha = dict(zip(sorted(files), rgba.images[:, 0, 0, 3].tolist()))  # listing order: sorted names
    assert alpha == {
        "cmyk.jpg": 255,
        "l.png": 255,
        "la.png": 255,
        "p.gif": 255,
        "rgb.jpg": 255,
        "rgba.png": 0,
    }


def test_missing_source_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.source .*/nope does not exist"):
        genart.read_images(str(tmp_path / "nope"), 8, 3)


@pytest.mark.parametrize(
    "bad", [{"image_size": 0}, {"channels": 2}, {"fit": "stretch"}, {"background": "nope"}]
)
def test_read_images_checks_its_arguments(tmp_path, bad):
    args = {"image_size": 8, "channels": 3, "fit": "crop", "background": "white", **bad}
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=rf"^{key}"):
        genart.read_images(str(tmp_path), args.pop("image_size"), args.pop("channels"), **args)


# ---- imagefolder metadata files


def _meta_folder(tmp_path, meta_name: str, rows: list[dict]):
    root = tmp_path / "meta"
    for i, name in enumerate(["a.png", "sub/b.png", "c.png"]):
        _write(root / name, solid(10 * (i + 1), 4, "L"))
    _write(
        root / "Food & Drink" / "d.png", solid(40, 4, "L")
    )  # a folder label is ignored when metadata exists
    if meta_name.endswith(".csv"):
        text = "file_name,label\n" + "".join(f"{r['file_name']},{r['label']}\n" for r in rows)
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows)
    (root / meta_name).write_text(text)
    return root


def test_metadata_csv_with_string_labels(tmp_path):
    rows = [{"file_name": "a.png", "label": "zebra"}, {"file_name": "sub/b.png", "label": "Food & Drink"},
            {"file_name": "c.png", "label": "zebra"}]  # fmt: skip
    got = genart.read_images(str(_meta_folder(tmp_path, "metadata.csv", rows)), 4, 1)
    assert got.class_names == ("Food & Drink", "zebra")
    assert got.labels.tolist() == [1, 0, 1] and got.images[:, 0, 0, 0].tolist() == [10, 20, 30]


def test_metadata_jsonl_with_int_labels(tmp_path):
    rows = [{"file_name": "a.png", "label": 2}, {"file_name": "c.png", "label": 0}]
    got = genart.read_images(str(_meta_folder(tmp_path, "metadata.jsonl", rows)), 4, 1)
    assert got.class_names == ("0", "1", "2") and got.labels.tolist() == [2, 0]


@pytest.mark.parametrize("path", ["../x.png", "/etc/x.png", "file:///tmp/x.png"])
def test_metadata_paths_outside_the_folder_are_refused(tmp_path, path):
    root = _meta_folder(tmp_path, "metadata.jsonl", [{"file_name": path, "label": "a"}])
    with pytest.raises(DataError, match=r"metadata.jsonl: file_name .* must be a path inside the folder"):
        genart.read_images(str(root), 4, 1)


def test_read_images_is_exported_lazily():
    import subprocess
    import sys

    code = (
        "import sys, genart; assert 'genart.data.read' not in sys.modules; print(genart.read_images.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "read_images"


def test_limit_counts_listed_items_in_class_order(classes):
    got = genart.read_images(str(classes), 4, 1, limit=3)
    assert got.labels.tolist() == [0, 0, 1] and got.report.count == 3


def test_class_folders_on_s3(s3_bucket):
    from genart.storage.fs import get_fs

    fs, root = get_fs(s3_bucket)
    for name, v in (("Food & Drink", 10), ("Flags", 20), (".ipynb_checkpoints", 99)):
        fs.pipe_file(f"{root}/art/{name}/a b.png", solid(v, 4, "L"))
    got = genart.read_images(f"{s3_bucket}/art", 4, 1)
    assert got.class_names == ("Flags", "Food & Drink") and got.labels.tolist() == [0, 1]
    assert got.images[:, 0, 0, 0].tolist() == [20, 10] and got.report.skipped == {"hidden": 1}
    assert got.report.examples["hidden"] == [".ipynb_checkpoints/"]


def test_sample_picks_seeded_listed_items_in_listing_order(tmp_path):
    root = tmp_path / "art"
    for i in range(40):
        _write(root / f"c{i % 4}" / f"{i:02d}.png", solid(i + 1, 4, "L"))
    listed = genart.read_images(str(root), 4, 1)
    pick = np.sort(np.random.default_rng(7).permutation(40)[:9])
    got = genart.read_images(str(root), 4, 1, sample=9, seed=7)
    assert got.images[:, 0, 0, 0].tolist() == listed.images[pick, 0, 0, 0].tolist()
    assert got.labels.tolist() == listed.labels[pick].tolist() and got.class_names == listed.class_names
    limited = genart.read_images(str(root), 4, 1, limit=20, sample=5, seed=7)  # a sample of the first 20
    first = np.sort(np.random.default_rng(7).permutation(20)[:5])
    assert limited.images[:, 0, 0, 0].tolist() == listed.images[first, 0, 0, 0].tolist()
