"""What reading a source did: images per class, files skipped and converted by reason, with a few examples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_EXAMPLES = 3


@dataclass(frozen=True)
class DecodeReport:
    """`count` images read; `skipped` {reason: n} (listing-time: hidden, extension, outside_class_folder;
    decode-time: not_an_image, corrupt, too_large, missing_file, unreadable_uri); `converted` {note: n}
    (alpha, exif_rotated, 16bit, float, palette, cmyk, animated_first_frame); `examples` {reason or note:
    up to MAX_EXAMPLES names}; `per_class` {class name: n} (empty when unlabelled)."""

    count: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    per_class: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Every skip and conversion reason with its count (skips first)."""
        return {**self.skipped, **self.converted}

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def line(self, source: str) -> str:
        """One log line: `data.source X: 1906 images (9 classes); converted: alpha 1906; skipped: corrupt 1 (a.png)`."""
        classes = f" ({len(self.per_class)} classes)" if self.per_class else ""
        out = f"data.source {source}: {self.count} images{classes}"
        if self.converted:
            out += "; converted: " + ", ".join(f"{k} {v}" for k, v in sorted(self.converted.items()))
        if self.skipped:
            parts = [
                f"{k} {v} ({', '.join(self.examples.get(k, []))})" for k, v in sorted(self.skipped.items())
            ]
            out += "; skipped: " + ", ".join(parts)
        return out

    def as_dict(self) -> dict:
        """JSON-ready: what a bundle's model.json records under training.data.report."""
        return {
            "skipped": dict(sorted(self.skipped.items())),
            "converted": dict(sorted(self.converted.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
            "per_class": dict(self.per_class),
        }


class ReportBuilder:
    """Accumulates a DecodeReport from listing skips and decoded batches' reason/notes/name/label columns."""

    def __init__(self, class_names: tuple[str, ...] | None):
        self.class_names = class_names
        self.count = 0
        self.skipped: Counter = Counter()
        self.converted: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.labels: Counter = Counter()

    def skip(self, reason: str, name: str) -> None:
        self.skipped[reason] += 1
        self._example(reason, name)

    def add_listing(self, skipped: dict[str, list[str]]) -> None:
        for reason, names in skipped.items():
            for name in names:
                self.skip(reason, name)

    def add_rows(self, ok: Iterable, reasons: Iterable, notes: Iterable, names: Iterable, labels: Iterable):
        for good, reason, note, name, label in zip(ok, reasons, notes, names, labels):
            if not good:
                self.skip(str(reason), str(name))
                continue
            self.count += 1
            self.labels[int(label)] += 1
            for n in filter(None, str(note).split(",")):
                self.converted[n] += 1
                self._example(n, str(name))

    def _example(self, key: str, name: str) -> None:
        shown = self.examples.setdefault(key, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(name)

    def build(self) -> DecodeReport:
        names = self.class_names or ()
        per_class = {n: self.labels.get(i, 0) for i, n in enumerate(names)}
        return DecodeReport(
            self.count, dict(self.skipped), dict(self.converted), dict(self.examples), per_class
        )
