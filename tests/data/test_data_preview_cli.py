"""`genart data preview`: a sheet of a train config's data as the model sees it; a bad source is exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from click.testing import CliRunner
from PIL import Image

from genart.cli import main
from tests.data.imgs import sticker

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, source: str) -> str:
    data = yaml.safe_load((ROOT / "configs" / "train" / "cgan-digits.yaml").read_text())
    data.update(output=str(tmp_path / "out"))
    data["data"] = {"source": source}
    data["model"].update(channels=3, num_classes=2)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_preview_draws_classes_and_reports(tmp_path):
    for name in ("A & B", "C D"):
        (tmp_path / "art" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "art" / name / f"{i}.png").write_bytes(sticker(8))
    (tmp_path / "art" / "C D" / "bad.png").write_bytes(b"junk")
    out = tmp_path / "sheet.png"
    cfg = _config(tmp_path, str(tmp_path / "art"))
    result = CliRunner().invoke(main, ["data", "preview", cfg, "--out", str(out), "--per-class", "4"])
    assert result.exit_code == 0, result.output
    sheet = Image.open(out)
    # LABEL_W 200 + 4 cells of (32 px * 2 + 4) + 8; title 28 + 2 rows of 68 + (2 report lines + 1) * 14
    assert sheet.size == (480, 206) and sheet.mode == "RGB"
    assert result.output.strip().splitlines()[-1] == f"{out} (480x206)"
    pixels = np.asarray(sheet)
    assert (pixels[30:98, 202:266] == (255, 0, 0)).all(-1).any()  # a decoded sticker's red centre is drawn
    assert not (pixels == (255, 255, 0)).all(-1).any()  # never the colour hidden under transparency


def test_a_bad_source_exits_2_with_one_line_naming_data_source(tmp_path):
    cfg = _config(tmp_path, str(tmp_path / "missing"))
    result = CliRunner().invoke(main, ["data", "preview", cfg, "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2
    assert (
        result.output
        == f"error: data.source {tmp_path / 'missing'} does not exist; give `digits` or a folder, glob or Parquet URI\n"
    )
    assert not (tmp_path / "s.png").exists()


def test_a_bad_data_key_exits_2(tmp_path):
    cfg = _config(tmp_path, "digits")
    result = CliRunner().invoke(
        main, ["data", "preview", cfg, "--out", str(tmp_path / "s.png"), "--set", "data.fit=stretch"]
    )
    assert result.exit_code == 2 and "data.fit" in result.output and "Traceback" not in result.output


def test_num_classes_that_training_would_refuse_exits_2(tmp_path):
    for name in ("A & B", "C D", "E"):
        (tmp_path / "art" / name).mkdir(parents=True)
        (tmp_path / "art" / name / "x.png").write_bytes(sticker(8))
    cfg = _config(tmp_path, str(tmp_path / "art"))
    result = CliRunner().invoke(main, ["data", "preview", cfg, "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"error: model.num_classes is 2 but data.source {tmp_path / 'art'} has 3 classes ('A & B', 'C D', 'E'); "
        "set model.num_classes=3 (or 0 for an unconditional model)"
    )


def test_limit_reads_only_the_first_listed_images(tmp_path):
    for name in ("A & B", "C D"):
        (tmp_path / "art" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "art" / name / f"{i}.png").write_bytes(sticker(8))
    cfg = _config(tmp_path, str(tmp_path / "art"))
    out = tmp_path / "s.png"
    result = CliRunner().invoke(
        main, ["data", "preview", cfg, "--out", str(out), "--limit", "2", "--per-class", "2"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"{out} (344x192)"
