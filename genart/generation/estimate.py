"""`genart plan`: what a generate job will cost before it runs. Plain Python (no Ray): objects, PUT requests,
bytes, S3 request and storage prices, and time on N replicas from a per-replica throughput.

Counts come from the plan's arithmetic (nothing proportional to `count` is made), bytes from the mean
encoded size of a small sample the bundle generates (or from the raw image size when the bundle cannot
be read), throughput from a short in-process measurement or the caller's figure.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from genart.config.generate import GenerateConfig, resolve_class_names
from genart.generation.parents import resolve_variations
from genart.generation.plan import Plan
from genart.ids import num_shards
from genart.images import encode
from genart.market.xmp import JOB_ID_LIKE, Provenance, xmp_packet
from genart.storage.commit import SCHEMA
from genart.storage.hf import class_names_of

log = logging.getLogger(__name__)

# Published S3 Standard list prices (us-east-1); PUT, COPY, POST and LIST requests are billed alike.
S3_PUT_USD_PER_1000 = 0.005
S3_STORAGE_USD_PER_GB_MONTH = 0.023
# s3fs writes an object larger than this as a multipart upload: create + one request per part + complete
MULTIPART_CHUNK = 50 * 2**20
LIST_PAGE = 1000  # keys per ListObjectsV2 request
TAR_BLOCK, TAR_RECORD = 512, 10240
JOB_PUTS = 3  # the write probe, _job.json, _SUCCESS
ITEM_JSON_BYTES = 330  # a webdataset .json member (measured: ~300-340 bytes)


@dataclass(frozen=True)
class Sample:
    """What a small sample says about one item: mean encoded bytes, metadata bytes per row."""

    image_bytes: float
    metadata_row_bytes: float
    source: str  # "bundle sample of N" or "raw size HxWxC (bundle unavailable)"


@dataclass(frozen=True)
class CostEstimate:
    layout: str
    count: int
    shards: int
    objects: int
    put_requests: int
    list_requests: int
    bytes: int
    image_bytes: int
    request_usd: float
    storage_usd_per_month: float
    replicas: int
    images_per_s_per_replica: float | None
    seconds: float | None
    sample: str

    def as_dict(self) -> dict:
        return asdict(self)


def puts_for(size: float) -> int:
    """PUT-class requests to write one object of `size` bytes with s3fs."""
    return 1 if size <= MULTIPART_CHUNK else math.ceil(size / MULTIPART_CHUNK) + 2


def _tar_bytes(n: int, image_bytes: float) -> float:
    def member(size: float) -> float:
        return TAR_BLOCK + math.ceil(size / TAR_BLOCK) * TAR_BLOCK

    raw = n * (member(image_bytes) + member(ITEM_JSON_BYTES)) + 2 * TAR_BLOCK
    return math.ceil(raw / TAR_RECORD) * TAR_RECORD


def estimate(
    cfg: GenerateConfig, sample: Sample, images_per_s_per_replica: float | None = None
) -> CostEstimate:
    """The cost of `cfg` (its count, shard_size, layout, market, replicas), by arithmetic only."""
    shards = num_shards(cfg.count, cfg.shard_size)
    full, rest = divmod(cfg.count, cfg.shard_size)
    groups = [(n, k) for n, k in ((cfg.shard_size, full), (rest, 1 if rest else 0)) if k]  # (size, shards)
    image_bytes = cfg.count * sample.image_bytes
    meta_bytes = cfg.count * sample.metadata_row_bytes + shards * 2048  # rows + footer per part

    puts, objects, stored = JOB_PUTS, 2, meta_bytes  # _job.json, _SUCCESS
    for n, k in groups:
        embedded = n * sample.image_bytes if cfg.layout == "parquet" else 0
        puts += k * puts_for(n * sample.metadata_row_bytes + embedded + 2048)
        if cfg.layout == "webdataset":
            tar = _tar_bytes(n, sample.image_bytes)
            puts += k * puts_for(tar)
            stored += k * tar
    objects += shards * (2 if cfg.layout == "webdataset" else 1)
    if cfg.layout == "files":
        puts += cfg.count
        objects += cfg.count
    if cfg.layout in ("files", "parquet"):
        stored += image_bytes
    if (
        cfg.market.standard == "opensea"
    ):  # tokens/{id}.json per item, a trait summary per shard, collection.json
        puts += cfg.count + shards + 1
        objects += cfg.count + shards + 1
        stored += cfg.count * 400 + shards * 600
    # the resume listing of metadata/ (and shards/ for webdataset), once per run
    lists = math.ceil(shards / LIST_PAGE) * (2 if cfg.layout == "webdataset" else 1)
    seconds = None
    if images_per_s_per_replica:
        seconds = cfg.count / (images_per_s_per_replica * cfg.replicas)
    return CostEstimate(
        layout=cfg.layout,
        count=cfg.count,
        shards=shards,
        objects=objects,
        put_requests=puts,
        list_requests=lists,
        bytes=int(stored),
        image_bytes=int(image_bytes),
        request_usd=(puts + lists) / 1000 * S3_PUT_USD_PER_1000,
        storage_usd_per_month=stored / 1e9 * S3_STORAGE_USD_PER_GB_MONTH,
        replicas=cfg.replicas,
        images_per_s_per_replica=images_per_s_per_replica,
        seconds=seconds,
        sample=sample.source,
    )


def _metadata_row_bytes(cfg: GenerateConfig, n: int) -> float:
    """Bytes per row of a metadata Parquet of `n` typical rows (without the image column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genart.storage import layout

    ids = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(0)
    cols = {
        "id": ids,
        "seed": rng.integers(0, 2**62, n),
        "class_id": (ids % 10).astype(np.int32),
        "path": [layout.item_path(cfg.layout, 0, int(i), cfg.image.format) for i in ids],
        "sha256": [rng.bytes(32).hex() for _ in ids],
        "width": np.full(n, 64, np.int32),
        "height": np.full(n, 64, np.int32),
        "format": [cfg.image.format] * n,
        "model_id": ["0" * 64] * n,
        "shard": np.zeros(n, np.int32),
        "job_id": ["20260101T000000Z-0123abcd"] * n,
        "created_at": pa.array([0] * n, pa.timestamp("us", tz="UTC")),
    }
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(cols, schema=SCHEMA), sink)
    return (sink.getvalue().size - 2048) / n


def sample_from_bundle(cfg: GenerateConfig, n: int = 256) -> tuple[Sample, float]:
    """Generate and encode the job's first `n` items in-process: (sample, images/s of generate+encode on
    one replica's share of threads)."""
    import torch

    from genart.bundle import load_bundle

    torch.set_num_threads(max(1, int(round(cfg.cpus_per_replica))))
    bundle = load_bundle(cfg.model, cfg.storage.options)
    cfg = resolve_class_names(cfg, class_names_of(bundle.meta))
    plan = Plan.from_config(cfg, bundle.num_classes)
    spec = plan.shard(0)
    seeds, cls = spec.seeds[:n], None if spec.class_ids is None else spec.class_ids[:n]
    bundle.generate(seeds[:8], None if cls is None else cls[:8])  # warm-up
    t0 = time.perf_counter()
    sizes = []
    stamp = Provenance(bundle.model_id, JOB_ID_LIKE) if cfg.provenance.xmp else None
    for lo in range(0, len(seeds), cfg.batch_size):
        sl = slice(lo, lo + cfg.batch_size)
        images = bundle.generate(seeds[sl], None if cls is None else cls[sl], truncation=cfg.truncation)
        blobs = [encode(img, cfg.image.format, cfg.image.quality) for img in images]
        if stamp is not None:  # the XMP disclosure: ~700 bytes per image
            blobs = stamp.stamp_all(blobs, cfg.image.format, spec.ids[sl], seeds[sl])
        sizes += [len(b) for b in blobs]
    rate = len(sizes) / (time.perf_counter() - t0)
    row = _metadata_row_bytes(cfg, min(cfg.shard_size, 1000))
    return Sample(float(np.mean(sizes)), row, f"bundle sample of {len(sizes)}"), rate


def sample_from_size(cfg: GenerateConfig, size: int, channels: int) -> Sample:
    """No bundle: PNG of noise-like content is about its raw size; webp/jpeg at quality ~90 about a sixth."""
    raw = size * size * channels
    per_image = raw + 100 if cfg.image.format == "png" else raw / 6 + 200
    if cfg.provenance.xmp:
        per_image += len(xmp_packet("0" * 64, JOB_ID_LIKE, 0, 0)) + 30  # the packet and its chunk
    row = _metadata_row_bytes(cfg, min(cfg.shard_size, 1000))
    return Sample(float(per_image), row, f"raw size {size}x{size}x{channels} (bundle unavailable)")


def plan_costs(
    cfg: GenerateConfig,
    *,
    measure: bool = False,
    images_per_s: float | None = None,
    fallback_size: tuple[int, int] = (64, 3),
    layouts: tuple[str, ...] | None = None,
) -> list[CostEstimate]:
    """Estimates for `cfg` (or for each of `layouts`): sample the bundle (measuring throughput when
    `measure`), or fall back to `fallback_size` = (side, channels) when the bundle cannot be read. A
    variations job is counted from its picks (ConfigError/BundleError as `resolve_variations` raises)."""
    from genart.bundle import read_meta
    from genart.errors import GenartError

    if cfg.variations is not None:  # its count is its children's: read the picks and the parents' output
        cfg = resolve_variations(cfg, read_meta(cfg.model, cfg.storage.options))
    try:
        sample, rate = sample_from_bundle(cfg, n=1024 if measure else 256)
        if measure and images_per_s is None:
            images_per_s = rate
    except (GenartError, OSError) as exc:
        log.warning("bundle %s unavailable (%s); estimating bytes from the image size", cfg.model, exc)
        if measure:
            log.warning("--measure needs the bundle; pass --images-per-s for a time estimate")
        sample = sample_from_size(cfg, *fallback_size)
    return [
        estimate(cfg.model_copy(update={"layout": name}), sample, images_per_s)
        for name in (layouts or (cfg.layout,))
    ]


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T", "P"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}"
        n /= 1000
    return f"{n:.3g}E{unit}"


def _duration(s: float | None) -> str:
    if s is None:
        return "n/a (use --measure or --images-per-s)"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h" if s < 2 * 86400 else f"{s / 86400:.1f} days"


def format_table(estimates: list[CostEstimate]) -> str:
    """A Markdown table, one row per estimate."""
    head = (
        "| layout | images | shards | objects | PUT requests | bytes | PUT+LIST cost | storage/month "
        "| replicas | time |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {e.layout} | {_human(e.count)} | {_human(e.shards)} | {_human(e.objects)} | {_human(e.put_requests)} "
        f"| {_human(e.bytes, 'B')} | ${e.request_usd:,.2f} | ${e.storage_usd_per_month:,.2f} | {e.replicas} "
        f"| {_duration(e.seconds)} |"
        for e in estimates
    ]
    e = estimates[0]
    rate = "n/a" if e.images_per_s_per_replica is None else f"{e.images_per_s_per_replica:,.0f}"
    note = (
        f"\nbytes per item from: {e.sample}; {e.image_bytes / max(e.count, 1):,.0f} B/image; "
        f"{rate} images/s per replica; S3 list prices: PUT/LIST ${S3_PUT_USD_PER_1000}/1,000, "
        f"storage ${S3_STORAGE_USD_PER_GB_MONTH}/GB-month"
    )
    return "\n".join([head, *rows]) + note
