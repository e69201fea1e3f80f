"""Looking at outputs: items of a generation output or a synthesized dataset, contact sheets, latent walks.

Plain Python (no Ray). A generation output is read through its committed metadata parts (the image from
its file, or from the `image` column in layout `parquet`); a synthesized dataset through data/*.parquet.
An item's traits come from tokens/{id}.json when the output has them, else they are computed the same way
the tokens compute them (genart.market), so filters work on every output.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from genart import market
from genart.config.generate import GenerateConfig, MarketConfig, class_id_of
from genart.errors import ConfigError, DataError, JobRecordError, StorageError
from genart.generation.job import record_config
from genart.images import DECODE_ERRORS, decode, flatten_alpha, header_size, to_pil
from genart.market.tokens import recorded_suffix
from genart.storage import layout, safejson
from genart.storage.commit import scan_metadata
from genart.storage.fs import cat_files, get_fs, join
from genart.storage.output import Output
from genart.views.limits import MAX_HELD_PIXELS, MAX_IMAGE_PIXELS, MAX_SHEET_ITEMS

log = logging.getLogger(__name__)

PREVIEW = "preview.png"
DATA_DIR = "data"
CHUNK = 256  # items decoded per step while filtering
READ_COLUMNS = (
    "id",
    "seed",
    "class_id",
    "label",
    "path",
    "model_id",
    "image",
    "shard",
    "format",
    "width",
    "height",
)


@dataclass
class Item:
    id: int
    path: str  # relative to the output (layout files); "" when the image lives inside a Parquet file
    traits: dict[str, str]
    image: np.ndarray  # uint8 (H, W, C)


class Source:
    """The items of a generation output (metadata/part-*.parquet) or a synthesized dataset (data/*.parquet)."""

    def __init__(self, uri: str, storage_options: dict | None = None, model: str | None = None):
        """`model`: a bundle the user names for class names (nothing named inside the output is fetched).

        Raises StorageError when URI holds neither kind, a row's path is not the layout's, or _job.json is
        broken; DataError when the ids are not integers."""
        self.out = Output.open(uri, storage_options)  # resolved once
        self.uri, self.where, self.model = uri, self.out.name, model
        self.cfg: GenerateConfig | None = None  # _job.json's config, read back by _job()
        self.fs, self.root = self.out.fs, self.out.root
        self.fs.invalidate_cache(self.root)
        shards = sorted(scan_metadata(self.fs, self.root)[0])
        if shards:
            self.kind = "generation"
            self.table = self._read([join(self.root, layout.metadata_path(k)) for k in shards])
        else:
            parts = sorted(p for p in self._ls(join(self.root, DATA_DIR)) if p.endswith(".parquet"))
            if not parts:
                raise StorageError(
                    f"{self.where} is neither a generation output (no {layout.METADATA_DIR}/part-*.parquet) "
                    f"nor a synthesized dataset (no {DATA_DIR}/*.parquet)"
                )
            self.kind = "dataset"
            self.table = self._read(parts)
        self.job = self._job() if self.kind == "generation" else {}
        self.layout = (self.cfg.layout if self.cfg else "files") if self.kind == "generation" else ""
        if self.kind == "generation" and self.layout == "files":
            self._check_paths()
        self.token_suffix = self._token_suffix()
        self.tokens = self.kind == "generation" and market.has_tokens(self.fs, self.root, self.token_suffix)
        self.collection = market.Collection(MarketConfig(), self._model_id(), self._class_names())

    def _token_suffix(self) -> str:
        """The job's market.token_suffix (".json" or ""); a value no config accepts is a DataError."""
        try:
            return self.cfg.market.token_suffix if self.cfg else recorded_suffix({})
        except ValueError as exc:
            raise DataError(f"{self.where}/{layout.JOB}: {exc}") from None

    def _ls(self, path: str) -> list[str]:
        try:
            return self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []

    def _read(self, paths: list[str]) -> pa.Table:
        tables = []
        for path in paths:
            try:
                with self.fs.open(path, "rb") as f:
                    pf = pq.ParquetFile(f)
                    self.schema_meta = pf.schema_arrow.metadata or {}
                    names = set(pf.schema_arrow.names)
                    want = [c for c in READ_COLUMNS if c in names]
                    tables.append(pf.read(columns=want))
            except (pa.ArrowException, OSError) as exc:
                rel = path.removeprefix(self.root.rstrip("/") + "/")
                raise StorageError(
                    f"{self.where}: {rel} is not a readable Parquet file (truncated or corrupt: "
                    f"{str(exc).splitlines()[0][:200]}); run genart verify {self.where}"
                ) from exc
        try:
            table = pa.concat_tables(tables, promote_options="default")
        except pa.ArrowException as exc:
            raise DataError(f"{self.where}: its parts' columns disagree ({str(exc)[:200]})") from exc
        if "label" in table.column_names and "class_id" not in table.column_names:
            table = table.append_column("class_id", table.column("label"))
        if "id" not in table.column_names:
            table = table.append_column("id", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        if not pa.types.is_integer(table.schema.field("id").type):
            raise DataError(f"{self.where}: the id column is {table.schema.field('id').type}, not integers")
        return table.sort_by("id")

    def _job(self) -> dict:
        """_job.json read back as the config it was written from; {} when the output has none.

        Raises StorageError when it is not valid JSON or is incomplete."""
        rel = f"{self.where}/{layout.JOB}"
        try:
            job = safejson.loads(self.fs.cat_file(join(self.root, layout.JOB)))
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StorageError(f"{rel} is not valid JSON ({exc}); run genart verify {self.where}") from exc
        try:
            self.cfg = record_config(job)
        except JobRecordError as exc:
            why = exc.problems[0] if exc.problems else f"{layout.JOB} is incomplete"
            raise StorageError(f"{self.where}: {why}; run genart verify {self.where}") from exc
        return job

    def _check_paths(self) -> None:
        """Every row's path must be the layout's for its id: a row never names a file outside the output."""
        fmt = self.cfg.image.format if self.cfg else None
        ids, paths = self.table.column("id").to_pylist(), self.table.column("path").to_pylist()
        shards = self.table.column("shard").to_pylist() if "shard" in self.table.column_names else None
        formats = self.table.column("format").to_pylist() if "format" in self.table.column_names else None
        if shards is None or (fmt is None and formats is None):
            raise StorageError(f"{self.where}: the metadata has no shard/format columns to check paths by")
        for j, (i, path) in enumerate(zip(ids, paths, strict=True)):
            f = fmt or formats[j]
            want = layout.item_path("files", shards[j], i, f) if f in layout.EXTENSIONS else None
            if path != want:
                raise StorageError(
                    f"{self.where}: id {i}'s path {path!r} is not the layout's {want!r} (a tampered or foreign "
                    f"output); run genart verify {self.where}"
                )

    def _model_id(self) -> str:
        if "model_id" in self.table.column_names and self.table.num_rows:
            return str(self.table.column("model_id")[0].as_py())
        return str(self.job.get("model_id", "")) if self.kind == "generation" else ""

    def _class_names(self) -> tuple[str, ...] | None:
        """Class names: the dataset's ClassLabel, else the bundle the user named (`model`; its errors are
        raised), else none (each class shows as its id). None for an unconditional model."""
        if "class_id" not in self.table.column_names or self.table.column("class_id").null_count == len(
            self.table
        ):
            return None
        if self.model:  # only a bundle the user named: never config.model from _job.json
            from genart.bundle import read_meta

            return tuple(read_meta(self.model, None).get("class_names") or ())
        try:
            features = (
                safejson.loads(self.schema_meta.get(b"huggingface", b"{}"))
                .get("info", {})
                .get("features", {})
            )
            names = features.get("label", {}).get("names")
            if names:
                return tuple(str(n) for n in names)
        except (json.JSONDecodeError, AttributeError, TypeError) as exc:  # names are a nicety
            log.debug("no class names for %s (%s)", self.where, exc)
        return ()  # each class is shown as its id (never a table as large as the largest id)

    def class_id_of(self, ref: int | str) -> int:
        """A --class value as a class id (config.generate.class_id_of: a class name of the dataset's ClassLabel
        or of the named bundle, else an id). Raises ConfigError naming --class (and listing the names) for
        any other string, or for an unconditional model."""
        names = self.collection.class_names
        if names is None:
            raise ConfigError(f"--class: {self.where} has no classes (an unconditional model)")
        if not names and isinstance(ref, str) and not re.fullmatch(r"-?[0-9]+", ref):
            raise ConfigError(
                f"--class {ref!r}: {self.where} records no class names; pass a class id, or --model BUNDLE "
                "to take the names from that bundle"
            )
        return class_id_of(ref, names, "--class", of=self.where)

    def rows(self, class_id: int | None = None) -> pa.Table:
        if class_id is None:
            return self.table
        if self.collection.class_names is None:
            raise ConfigError(f"--class: {self.where} has no classes (an unconditional model)")
        return self.table.filter(pc.equal(self.table.column("class_id"), class_id))

    def _images(self, rows: pa.Table) -> list[np.ndarray]:
        """Decoded images of `rows`. Raises StorageError for a missing image or one of another size."""
        ids = rows.column("id").to_pylist()
        if "image" in rows.column_names:
            blobs = [(v or {}).get("bytes") for v in rows.column("image").to_pylist()]
            names = [f"the image of id {i}" for i in ids]
        elif self.layout not in ("", "files"):
            raise StorageError(
                f"{self.where}: layout {self.layout} keeps images in shard files; use layout files"
            )
        else:
            names = rows.column("path").to_pylist()  # checked against the layout when the Source was made
            paths = [join(self.root, p) for p in names]
            found = cat_files(self.fs, paths)
            blobs = [found.get(p) for p in paths]
        sizes = [None] * len(ids)
        if "width" in rows.column_names and "height" in rows.column_names:
            sizes = list(
                zip(rows.column("width").to_pylist(), rows.column("height").to_pylist(), strict=True)
            )
        return [self._decode(i, n, b, size) for i, n, b, size in zip(ids, names, blobs, sizes, strict=True)]

    def _decode(self, item_id: int, name: str, blob, size) -> np.ndarray:
        if blob is None or isinstance(blob, BaseException):
            why = "missing" if blob is None or isinstance(blob, FileNotFoundError) else f"unreadable ({blob})"
            raise StorageError(f"{self.where}: id {item_id}: {name} is {why}; run genart verify {self.where}")
        try:
            got = header_size(blob)
        except DECODE_ERRORS as exc:
            raise StorageError(f"{self.where}: id {item_id}: {name} is not a readable image ({exc})") from exc
        if (size is not None and got != tuple(size)) or got[0] * got[1] > MAX_IMAGE_PIXELS:
            said = (
                f"its row says {size[0]}x{size[1]}" if size is not None else f"over {MAX_IMAGE_PIXELS} pixels"
            )
            raise StorageError(
                f"{self.where}: id {item_id}: {name} is {got[0]}x{got[1]}, {said}: not decoded (at most "
                f"{MAX_IMAGE_PIXELS} pixels); run genart verify {self.where}"
            )
        return decode(blob)

    def _traits(self, rows: pa.Table, images: list[np.ndarray]) -> list[dict[str, str]]:
        ids = rows.column("id").to_pylist()
        if self.tokens:
            return [
                market.flat_traits(tok)
                for _, tok in market.read_tokens(self.fs, self.root, ids, self.token_suffix)
            ]
        seeds = rows.column("seed").to_pylist() if "seed" in rows.column_names else [None] * len(ids)
        classes = (
            rows.column("class_id").to_pylist() if "class_id" in rows.column_names else [None] * len(ids)
        )
        pixels = [market.pixel_traits(img[None])[0] for img in images]
        out = []
        for seed, cid, px in zip(seeds, classes, pixels):
            traits = self.collection.traits(0 if seed is None else seed, cid, px)
            if seed is None:
                traits.pop("Seed")
            out.append(traits)
        return out

    def items(self, class_id: int | None = None, wanted: dict[str, str] | None = None) -> Iterator[Item]:
        """Items in id order, of one class and holding every wanted trait when given."""
        rows = self.rows(class_id)
        for lo in range(0, rows.num_rows, CHUNK):
            chunk = rows.slice(lo, CHUNK)
            images = self._images(chunk)
            paths = chunk.column("path").to_pylist() if self.kind == "generation" else [""] * len(images)
            if self.layout not in ("", "files"):
                paths = [""] * len(images)
            for item_id, path, traits, image in zip(
                chunk.column("id").to_pylist(), paths, self._traits(chunk, images), images
            ):
                if not wanted or market.traits_match(traits, wanted):
                    yield Item(item_id, path or "", traits, image)


def first_items(
    source: Source, limit: int, class_id: int | None = None, wanted: dict | None = None
) -> list[Item]:
    """The first `limit` matching items. Raises ConfigError when they would hold over MAX_HELD_PIXELS."""
    out: list[Item] = []
    held = 0
    for item in source.items(class_id, wanted):
        held += item.image.shape[0] * item.image.shape[1]
        if held > MAX_HELD_PIXELS:
            raise ConfigError(
                f"--limit {limit}: {len(out) + 1} items of {item.image.shape[1]}x{item.image.shape[0]} would "
                f"exceed {MAX_HELD_PIXELS} pixels; lower --limit"
            )
        out.append(item)
        if len(out) >= limit:
            break
    return out


def select(source: Source, class_id: int | None, wanted: dict[str, str], limit: int) -> list[Item]:
    out = first_items(source, limit, class_id, wanted)
    if not out:
        what = ", ".join(
            [f"class {class_id}"] * (class_id is not None) + [f"{k}={v}" for k, v in wanted.items()]
        )
        raise DataError(f"{source.where}: no item matches {what or 'anything'}")
    return out


def _same_shape(images: list[np.ndarray]) -> np.ndarray:
    """Stack images of possibly mixed channels/sizes: grayscale unless any is colour, the first one's size;
    RGBA shown over a checkerboard."""
    colour = any(im.shape[2] >= 3 for im in images)
    h, w = images[0].shape[:2]
    out = []
    for im in images:
        im = flatten_alpha(im)  # RGBA over a checkerboard, as viewers show transparency
        pil = to_pil(im)
        pil = pil.convert("RGB" if colour else "L")
        if pil.size != (w, h):
            pil = pil.resize((w, h), Image.Resampling.NEAREST)
        arr = np.asarray(pil)
        out.append(arr if colour else arr[..., None])
    return np.stack(out)


def write_bytes(target: str, data: bytes) -> str:
    fs, path = get_fs(target)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data)
    return target


def contact_sheet(
    uri: str,
    out: str | None = None,
    class_id: int | str | None = None,
    traits: dict | None = None,
    limit: int = 100,
    model: str | None = None,
) -> tuple[str, int]:
    """A grid PNG (10 columns, 2-pixel gaps) of the first `limit` matching items; returns (where, count).
    `class_id`: a class id or name (Source.class_id_of). `model`: a bundle to take class names from. Raises
    ConfigError for a limit outside 1..MAX_SHEET_ITEMS or an unknown class name."""
    from genart.images import grid_png

    if not 1 <= limit <= MAX_SHEET_ITEMS:
        raise ConfigError(f"--limit {limit}: allowed 1..{MAX_SHEET_ITEMS}")
    source = Source(uri, model=model)
    if class_id is not None:
        class_id = source.class_id_of(class_id)
    items = select(source, class_id, traits or {}, limit)
    png = grid_png(_same_shape([it.image for it in items]), cols=min(10, len(items)))
    target = write_bytes(out or join(uri.rstrip("/"), PREVIEW), png)
    log.debug("contact sheet of %d items: %s", len(items), target)
    return target, len(items)
