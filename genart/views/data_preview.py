"""`genart data preview`: a contact sheet of a train config's data as the model will see it (no Ray).

Reads the source through `genart.data.read` (the listing, fetch and decode training runs) with the config's
image_size, channels, fit and background; draws one row per class: its name and count, then its first
images; below, what was converted and skipped, by reason, with example names."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from genart.config.train import TrainConfig
from genart.data.labels import check_num_classes
from genart.data.report import DecodeReport
from genart.images import encode, to_pil
from genart.storage.fs import redact
from genart.views.preview import write_bytes

log = logging.getLogger(__name__)
TEXT_H = 14  # PIL's default bitmap font is about 11 px high
LABEL_W = 200
CHECKER = (204, 204, 204)


@dataclass(frozen=True)
class DataSheet:
    """What `data preview` drew: the sheet's URI, its size in pixels and the report it shows."""

    target: str
    size: tuple[int, int]
    report: DecodeReport
    class_names: tuple[str, ...] | None


def data_preview(cfg: TrainConfig, out: str, per_class: int = 8, limit: int | None = None) -> DataSheet:
    """Decode cfg.data as training does and write the sheet PNG to `out` (a path or URI); `limit`: read only
    the first listed images (class by class), for a quick look at a big source. Raises ConfigError
    when data.source does not exist, a data key is invalid or model.num_classes does not match the classes
    found; DataError when it yields no image."""
    from genart.data.read import read_images

    m, d = cfg.model, cfg.data
    if d.source == "digits":
        images, labels, names, report = _digits(m.image_size)
        log.info(report.line("digits"))
    else:
        got = read_images(
            d.source,
            m.image_size,
            m.channels,
            fit=d.fit,
            background=d.background_rgb,
            label_column=d.label_column,
            image_column=d.image_column,
            storage_options=cfg.storage.options,
            limit=limit,
        )
        images, labels, names, report = got.images, got.labels, got.class_names, got.report
        if names is not None:  # training would refuse it: say so now
            check_num_classes(m.num_classes, names, redact(d.source))
    sheet = draw_sheet(images, labels, names, report, redact(d.source), per_class)
    write_bytes(out, encode(np.asarray(sheet)))
    return DataSheet(out, sheet.size, report, names)


def _digits(image_size: int):
    from genart.data.digits import CLASS_NAMES, load_digits_arrays

    images, labels = load_digits_arrays(image_size)
    per = {n: int((labels == i).sum()) for i, n in enumerate(CLASS_NAMES)}
    return images, labels, tuple(CLASS_NAMES), DecodeReport(count=len(images), per_class=per)


def draw_sheet(images, labels, names, report: DecodeReport, source: str, per_class: int) -> Image.Image:
    """uint8 (N, S, S, C) images -> an RGB sheet: a title, one row per class (or one row when unlabelled)
    with the name and count, then the report's converted and skipped lines."""
    size = images.shape[1]
    scale = max(1, 64 // size)
    cell = size * scale + 4
    rows = [(n, np.flatnonzero(labels == i)[:per_class]) for i, n in enumerate(names)] if names else []
    if not names:
        rows = [("(unlabelled)", np.arange(min(per_class, len(images))))]
    notes = _report_lines(report)
    width = LABEL_W + per_class * cell + 8
    height = TEXT_H * 2 + len(rows) * max(cell, TEXT_H * 2) + (len(notes) + 1) * TEXT_H
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), f"{source}: {report.count} images, {len(names or ())} classes", fill=(0, 0, 0))
    y = TEXT_H * 2
    for name, idx in rows:
        count = report.per_class.get(name, len(idx)) if names else report.count
        draw.text((4, y + 2), _short(name, 30), fill=(0, 0, 0))
        draw.text((4, y + 2 + TEXT_H), f"{count} images", fill=(90, 90, 90))
        for k, i in enumerate(idx):
            tile = _tile(images[i], scale)
            sheet.paste(tile, (LABEL_W + k * cell + 2, y + 2))
        y += max(cell, TEXT_H * 2)
    for line in notes:
        y += TEXT_H
        draw.text(
            (4, y), _short(line, (width - 8) // 6), fill=(160, 0, 0) if "skipped" in line else (0, 0, 0)
        )
    return sheet


def _tile(image: np.ndarray, scale: int) -> Image.Image:
    """One image enlarged by `scale` (nearest); RGBA drawn over a checkerboard so transparency shows."""
    pil = to_pil(image)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    if pil.mode != "RGBA":
        return pil.convert("RGB")
    yy, xx = np.mgrid[: pil.height, : pil.width]
    board = np.where((((yy // 8) + (xx // 8)) % 2)[..., None] == 0, 255, CHECKER).astype(np.uint8)
    back = Image.fromarray(board.astype(np.uint8), "RGB").convert("RGBA")
    return Image.alpha_composite(back, pil).convert("RGB")


def _report_lines(report: DecodeReport) -> list[str]:
    lines = []
    for title, counts in (("converted", report.converted), ("skipped", report.skipped)):
        for reason, n in sorted(counts.items()):
            examples = ", ".join(report.examples.get(reason, []))
            lines.append(f"{title} {reason}: {n} ({examples})")
    return lines or ["nothing skipped or converted"]


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
