"""The shard commit: a shard's images first, then metadata/part-NNNNN.parquet (the commit).

A shard exists for readers only once its metadata file exists. Every storage write goes through the
retry policy (`storage/retry.py`: bounded, with backoff), then raises StorageError naming the shard and path.
Layout `files` writes each batch's images as they come; `webdataset` keeps the shard's encoded images
and writes shards/NNNNN.tar at commit, before the metadata; `parquet` puts them into the metadata's
`image` column. Either way a shard's images are held at most once (shard_size x image bytes).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genart.images import Batch, sha256_hex
from genart.storage import layout, packing
from genart.storage.fs import join
from genart.storage.output import Output
from genart.storage.retry import ATTEMPTS, BACKOFF_S, retry

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("seed", pa.int64()),
        ("class_id", pa.int32()),
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("format", pa.string()),
        ("model_id", pa.string()),
        ("shard", pa.int32()),
        ("job_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
# columns a filtered job adds: the quality score (filter.min_score) and the 64-bit phash (dedupe.max_distance);
# synthesize's candidate rounds also record `judged` (the independent digits classifier agrees with the class)
# a variations job adds its children's parents: the parents' output's job_id and their ids there
FILTER_COLUMNS = {
    "score": pa.float32(),
    "phash": pa.uint64(),
    "judged": pa.bool_(),
    "parent_job": pa.string(),
    "parent_ids": pa.list_(pa.int64()),
}
BYTES_KEY = b"genart.bytes"  # Parquet key-value metadata: total image bytes of the shard


def _is_local(fs) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"file", "local"} & set(protocol))


def scan_metadata(fs, root: str) -> tuple[set[int], list[str]]:
    """One listing of metadata/: the committed shard numbers, and temp files of interrupted commits."""
    meta_dir = join(root, layout.METADATA_DIR)
    fs.invalidate_cache(meta_dir)  # object-store listings are cached per filesystem instance
    try:
        names = fs.ls(meta_dir, detail=False)
    except FileNotFoundError:
        return set(), []
    committed, stale = set(), []
    for name in names:
        k = layout.parse_metadata_name(name)
        if k is not None:
            committed.add(k)
        elif name.endswith(".tmp"):
            stale.append(name)
    return committed, stale


def stale_tars(fs, root: str) -> list[str]:
    """Temp files in shards/ of tar writes interrupted by a killed replica (one listing; [] when none)."""
    shards_dir = join(root, layout.SHARDS_DIR)
    fs.invalidate_cache(shards_dir)
    try:
        return [n for n in fs.ls(shards_dir, detail=False) if n.endswith(".tmp")]
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class ShardFormat:
    """What every shard of one job looks like: the job's constant columns, image format, layout, the filter
    columns it adds (`score`, `phash`) and the class names (layout `parquet` stores them as a ClassLabel)."""

    job_id: str
    model_id: str
    fmt: str  # image format: png, jpeg, webp
    layout: str = "files"
    filter_columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None


class ShardWriter:
    """Writes shards of one job under `out`. Thread-safe: images may be added from an encoder thread.
    ValueError for a layout that is not one of layout.LAYOUTS."""

    def __init__(
        self,
        out: Output,
        shard_format: ShardFormat,
        *,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
    ):
        if shard_format.layout not in layout.LAYOUTS:
            raise ValueError(f"layout {shard_format.layout!r} is not one of {', '.join(layout.LAYOUTS)}")
        self.fs, self.root, self.uri = out.fs, out.root, out.name
        self.job_id, self.model_id, self.fmt, self.layout = (
            shard_format.job_id,
            shard_format.model_id,
            shard_format.fmt,
            shard_format.layout,
        )
        base = SCHEMA
        for name in shard_format.filter_columns:
            base = base.append(pa.field(name, FILTER_COLUMNS[name]))
        self.filter_columns = tuple(shard_format.filter_columns)
        # parquet: ClassLabel names
        self.schema = packing.schema_for(base, shard_format.layout, shard_format.class_names)
        self.attempts, self.backoff_s = attempts, backoff_s
        self.local = _is_local(out.fs)

    def retry(self, shard: int, rel_path: str, action: Callable[[], object]):
        return retry(action, f"shard {shard}: writing {self.uri}/{rel_path}", self.attempts, self.backoff_s)

    def open_shard(self, shard: int) -> ShardWrite:
        if self.local:
            dirs = {"files": layout.shard_dir(shard), "webdataset": layout.SHARDS_DIR, "parquet": None}
            for d in (dirs[self.layout], layout.METADATA_DIR):
                if d is not None:
                    self.retry(shard, d, lambda d=d: self.fs.makedirs(join(self.root, d), exist_ok=True))
        return ShardWrite(self, shard)

    def put(self, shard: int, rel: str, data: bytes) -> None:
        """One object, atomically: temp + rename beside it locally, a single PUT on object stores."""
        final = join(self.root, rel)
        if self.local:
            folder, name = rel.rsplit("/", 1)
            tmp = join(self.root, folder, layout.temp_name(name, uuid.uuid4().hex))
            self.retry(shard, rel, lambda: (self.fs.pipe_file(tmp, data), self.fs.mv(tmp, final)))
        else:
            self.retry(shard, rel, lambda: self.fs.pipe_file(final, data))


class ShardWrite:
    """One shard in progress: `add` batches of encoded images (written at once), then `commit`."""

    def __init__(self, writer: ShardWriter, shard: int):
        self.w, self.shard = writer, shard
        self._lock = threading.Lock()
        self._cols: dict[str, list] = {
            k: []
            for k in ("id", "seed", "class_id", "path", "sha256", "width", "height", *writer.filter_columns)
        }
        self.bytes = 0
        self._blobs: dict[int, bytes] = {}  # packed layouts: id -> encoded image, until commit

    def add(self, batch: Batch) -> None:
        """Add one batch of encoded images: `batch.blobs` (one per item, in the writer's format) and, for
        each of the writer's filter columns, that field of the batch (score: float32, phash: uint64,
        judged: bool; one value per item); `batch.images` gives width and height. Layout `files` writes
        the images now (one request per file, concurrent where the backend allows); packed layouts keep
        them for the commit. Raises StorageError once the bounded retries of a write are spent, ValueError
        when the batch has no blobs."""
        w = self.w
        if batch.blobs is None:
            raise ValueError("ShardWrite.add needs an encoded batch (batch.blobs is None)")
        ids, blobs, size = batch.ids, batch.blobs, batch.size
        digests = [sha256_hex(b) for b in blobs]
        paths = [layout.item_path(w.layout, self.shard, int(i), w.fmt) for i in ids]
        if w.layout == "files":
            files = {join(w.root, p): b for p, b in zip(paths, blobs, strict=True)}
            w.retry(
                self.shard,
                f"{layout.shard_dir(self.shard)}/ ({len(files)} images from {paths[0]})",
                lambda: w.fs.pipe(files),
            )
        with self._lock:
            if w.layout != "files":
                self._blobs.update(zip((int(i) for i in ids), blobs, strict=True))
            c = self._cols
            c["id"].extend(int(i) for i in ids)
            c["seed"].extend(int(s) for s in batch.seeds)
            c["class_id"].extend(
                [None] * len(ids) if batch.class_ids is None else [int(x) for x in batch.class_ids]
            )
            c["path"].extend(paths)
            c["sha256"].extend(digests)
            c["width"].extend([size[0]] * len(ids))
            c["height"].extend([size[1]] * len(ids))
            for name in w.filter_columns:
                c[name].extend(np.asarray(getattr(batch, name)).tolist())
            self.bytes += sum(len(b) for b in blobs)

    def table(self) -> pa.Table:
        with self._lock:
            n = len(self._cols["id"])
            order = np.argsort(np.asarray(self._cols["id"], dtype=np.int64), kind="stable")
            cols = {k: [v[i] for i in order] for k, v in self._cols.items()}
        now = datetime.now(timezone.utc)
        cols.update(
            format=[self.w.fmt] * n,
            model_id=[self.w.model_id] * n,
            shard=[self.shard] * n,
            job_id=[self.w.job_id] * n,
            created_at=[now] * n,
        )
        if self.w.layout == "parquet":
            with self._lock:
                data = [self._blobs[i] for i in cols["id"]]
            cols["image"] = pa.StructArray.from_arrays(
                [pa.array(data, pa.binary()), pa.array(cols["path"], pa.string())],
                fields=list(packing.IMAGE_TYPE),
            )
        schema = self.w.schema.with_metadata(
            {**(self.w.schema.metadata or {}), BYTES_KEY: str(self.bytes).encode()}
        )
        return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)

    def commit(self) -> int:
        """Write the shard's tar (layout `webdataset`), then metadata/part-NNNNN.parquet: the commit. Each
        write is atomic where the backend allows (temp + rename locally, one PUT on object stores)."""
        w = self.w
        table = self.table()
        if w.layout == "webdataset":
            rows = table.select(list(packing.ITEM_JSON_KEYS)).to_pylist()
            w.put(self.shard, layout.tar_path(self.shard), packing.shard_tar(rows, self._blobs, w.fmt))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        w.put(self.shard, layout.metadata_path(self.shard), sink.getvalue().to_pybytes())
        self._blobs = {}
        return self.bytes
