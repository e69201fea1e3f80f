"""Collections for digital-art markets: OpenSea / ERC-721 token metadata and the collection's rarity table.

Plain Python (no Ray). With `market.standard: opensea` a generation output also holds

    tokens/{id}.json    one per item (name, description, image = base_uri + path, attributes); a replica
                        writes a shard's tokens before that shard's metadata commit, so every committed
                        item has its token, and a retried shard rewrites the same keys with the same bytes
    tokens/_traits/part-NNNNN.json
                        per shard: its item count and {trait_type: {value: count}} of the ranked traits,
                        written with the shard's last tokens (before its commit; same bytes on a retry)
    collection.json     name, description, item count and the trait rarity table; the driver sums the
                        shard summaries (one listing, one small read per shard), before _SUCCESS. Shards of
                        older outputs without a summary are counted from their tokens instead

Computed traits depend only on an item's pixels: Background (the named palette colour most common on the
image border), Dominant colour (the most common palette colour among the other pixels: the subject's
colour) and Brightness (a bucket of the mean Rec. 601 luminance). The Seed attribute is a string: seeds
are 63-bit and JavaScript numbers would round them, and the seed regenerates the item exactly.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from genart.config.generate import GenerateConfig, MarketConfig
from genart.errors import StorageError
from genart.storage import layout
from genart.storage.fs import get_fs, join, redact
from genart.storage.writer import retry

log = logging.getLogger(__name__)

OPENSEA = "opensea"
# Named palette for the colour traits: five greys (grayscale models still get varied traits) and the
# basic hues. Each pixel takes the nearest name (Euclidean distance in RGB).
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "dark grey": (64, 64, 64),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "white": (255, 255, 255),
    "red": (220, 30, 30),
    "maroon": (128, 0, 0),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 30),
    "olive": (128, 128, 0),
    "green": (30, 170, 60),
    "teal": (0, 128, 128),
    "cyan": (0, 220, 230),
    "blue": (30, 70, 220),
    "navy": (0, 0, 128),
    "purple": (128, 0, 160),
    "magenta": (230, 40, 200),
    "pink": (255, 170, 200),
    "brown": (140, 80, 30),
}
_NAMES = list(PALETTE)
_RGB = np.asarray(list(PALETTE.values()), dtype=np.float32)
# Brightness: upper bounds (exclusive) of mean luminance 0..255 for each bucket.
BRIGHTNESS = ((40, "very dark"), (85, "dark"), (170, "medium"), (215, "bright"), (256, "very bright"))
TRAIT_SIDE = 64  # colour traits look at most 64x64 sampled pixels per image
SUBJECT_SHARE = 0.02  # at least this share of pixels differ from the background for a subject colour
NOT_RANKED = ("Seed",)  # unique per item: no rarity to rank
READ_CHUNK = 1000  # token files read per request batch
OPEN_TALLIES = 8  # shards a TokenWriter counts at once (one in use; the rest: attempts that failed midway)


def _brightness(mean_luma: float) -> str:
    return next(name for bound, name in BRIGHTNESS if mean_luma < bound)


def pixel_traits(images: np.ndarray) -> list[dict[str, str]]:
    """uint8 (N, H, W, C) -> per image {"Background", "Dominant colour", "Brightness"} (C = 1, 3 or 4)."""
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[3] not in (1, 3, 4):
        raise ValueError(
            f"expected uint8 (N, H, W, C) images with C in 1, 3, 4; got {images.dtype} {images.shape}"
        )
    rgb = images[..., :3] if images.shape[3] >= 3 else np.repeat(images, 3, axis=3)
    luma = rgb.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    means = luma.reshape(len(images), -1).mean(axis=1)
    step = max(1, -(-max(images.shape[1:3]) // TRAIT_SIDE))
    small = rgb[:, ::step, ::step].astype(np.float32)
    n, h, w, _ = small.shape
    dist = ((small.reshape(n, h * w, 1, 3) - _RGB[None, None]) ** 2).sum(axis=3)
    idx = dist.argmin(axis=2).reshape(n, h, w)
    border = np.zeros((h, w), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    out = []
    for k in range(n):
        background = int(np.bincount(idx[k][border], minlength=len(_NAMES)).argmax())
        subject = idx[k][idx[k] != background]
        # a subject of a few stray pixels is noise: the image is then all background
        big = subject.size >= SUBJECT_SHARE * h * w
        dominant = int(np.bincount(subject, minlength=len(_NAMES)).argmax()) if big else background
        out.append(
            {
                "Background": _NAMES[background],
                "Dominant colour": _NAMES[dominant],
                "Brightness": _brightness(float(means[k])),
            }
        )
    return out


def trait_key(name: str) -> str:
    """Trait names compare loosely: `dominant_colour`, `Dominant colour` and `dominant-colour` are one key."""
    return re.sub(r"[\s_-]+", "_", name.strip().casefold())


def traits_match(traits: dict[str, str], wanted: dict[str, str]) -> bool:
    """Whether an item's flat traits hold every wanted KEY=VALUE (keys and values compared loosely)."""
    have = {trait_key(k): str(v).casefold() for k, v in traits.items()}
    return all(have.get(trait_key(k)) == str(v).strip().casefold() for k, v in wanted.items())


def token_name(collection_name: str, item_id: int) -> str:
    """An item's token name: `{market.name} #{id}`."""
    return f"{collection_name} #{int(item_id)}"


def item_url(base_uri: str, path: str) -> str:
    """base_uri + the item's relative path, with exactly one slash between them."""
    return f"{base_uri.rstrip('/')}/{path}" if base_uri else path


@dataclass(frozen=True)
class Collection:
    """What every token of one job shares: the market settings, the model and its class names."""

    market: MarketConfig
    model_id: str
    class_names: tuple[str, ...] | None  # None for unconditional models

    @classmethod
    def from_bundle_meta(cls, market: MarketConfig, meta: dict) -> Collection:
        names = None
        if meta.get("num_classes"):
            names = tuple(meta.get("class_names") or [str(i) for i in range(meta["num_classes"])])
        return cls(market=market, model_id=meta["model_id"], class_names=names)

    def traits(self, seed: int, class_id: int | None, pixels: dict[str, str]) -> dict[str, str]:
        """An item's flat traits, in attribute order: Seed, Class (conditional models), Model, pixel traits."""
        out = {"Seed": str(int(seed))}
        if self.class_names is not None and class_id is not None:
            cid = int(class_id)
            out["Class"] = self.class_names[cid] if 0 <= cid < len(self.class_names) else str(cid)
        out["Model"] = self.model_id[:12]
        out.update(pixels)
        return out

    def token(self, item_id: int, path: str, traits: dict[str, str]) -> dict:
        """The OpenSea / ERC-721 metadata JSON of one item."""
        return {
            "name": token_name(self.market.name, item_id),
            "description": self.market.description,
            "image": item_url(self.market.base_uri, path),
            "attributes": [{"trait_type": k, "value": v} for k, v in traits.items()],
        }


def token_bytes(token: dict) -> bytes:
    return json.dumps(token, indent=2, ensure_ascii=False).encode()


def flat_traits(token: dict) -> dict[str, str]:
    """A token's attributes as {trait_type: value}."""
    return {a["trait_type"]: a["value"] for a in token.get("attributes", [])}


def _count(counts: dict[str, Counter], traits: dict[str, str]) -> None:
    """Add one item's ranked traits (all but NOT_RANKED) to `counts`; new traits keep first-seen order."""
    for k, v in traits.items():
        if k not in NOT_RANKED:
            counts.setdefault(k, Counter())[str(v)] += 1


def _shard_range(count: int, shard_size: int, shard: int) -> tuple[int, int]:
    """Ids [lo, hi) of a shard: the plan's rule (generation/plan.py)."""
    lo = shard * shard_size
    return lo, min(lo + shard_size, count)


class _ShardTally:
    """The ranked traits of a shard's items, kept by id until every id has them. Keyed by id, so batches
    (or slices of them) may arrive in any order, and a retried attempt overwrites its own ids."""

    def __init__(self, shard: int, lo: int, hi: int):
        self.shard, self.lo, self.hi = shard, lo, hi
        self.seen = np.zeros(hi - lo, dtype=bool)
        self.codes: dict[str, np.ndarray] = {}  # trait -> each id's value code (-1: the item lacks it)
        self.values: dict[str, dict[str, int]] = {}  # trait -> {value: code}
        self.first: dict[str, tuple[int, int]] = {}  # trait -> (id, attribute position) it first shows at

    def add(self, ids, traits: list[dict[str, str]]) -> bool:
        """Record one batch; True once every id of the shard has its traits."""
        for item_id, item in zip(ids, traits, strict=True):
            i = int(item_id) - self.lo
            if not 0 <= i < len(self.seen):
                raise ValueError(f"shard {self.shard}: id {int(item_id)} is outside {self.lo}..{self.hi - 1}")
            for codes in self.codes.values():
                codes[i] = -1
            for pos, (k, v) in enumerate(item.items()):
                if k in NOT_RANKED:
                    continue
                if k not in self.codes:
                    self.codes[k] = np.full(len(self.seen), -1, dtype=np.int32)
                    self.values[k] = {}
                table = self.values[k]
                self.codes[k][i] = table.setdefault(str(v), len(table))
                self.first[k] = min(self.first.get(k, (i, pos)), (i, pos))
            self.seen[i] = True
        return bool(self.seen.all())

    def summary_bytes(self) -> bytes:
        """Deterministic bytes: traits in the order the items in id order first show them (as rarity()
        counts them), values by name."""
        traits = {}
        for k in sorted(self.codes, key=self.first.__getitem__):
            counts = np.bincount(self.codes[k][self.codes[k] >= 0], minlength=len(self.values[k]))
            named = {v: int(counts[code]) for v, code in self.values[k].items() if counts[code]}
            if named:
                traits[k] = dict(sorted(named.items()))
        record = {
            "shard": self.shard,
            "ids": [self.lo, self.hi],
            "items": self.hi - self.lo,
            "traits": traits,
        }
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


class TokenWriter:
    """Writes tokens/{id}.json for a replica's batches; does nothing unless `market.standard` is opensea."""

    def __init__(self, cfg: GenerateConfig, bundle_meta: dict):
        self.enabled = cfg.market.standard == OPENSEA
        self.fmt, self.layout = cfg.image.format, cfg.layout
        self.uri = redact(cfg.output)
        if self.enabled:
            self.fs, self.root = get_fs(cfg.output, cfg.storage.options)
            self.collection = Collection.from_bundle_meta(cfg.market, bundle_meta)
            self.count, self.shard_size = cfg.count, cfg.shard_size
            self._tallies: dict[int, _ShardTally] = {}  # shard -> its traits until complete, oldest first
            self._lock = threading.Lock()  # write() may run on several encode threads at once

    def write(self, shard: int, ids, seeds, class_ids, images: np.ndarray) -> None:
        """Token files of one batch (one request per file, concurrent where the backend allows); with the
        batch that completes the shard, also the shard's trait summary (tokens/_traits/part-NNNNN.json)."""
        if not self.enabled:
            return
        files, ranked = {}, []
        for k, pixels in enumerate(pixel_traits(images)):
            item_id = int(ids[k])
            traits = self.collection.traits(seeds[k], None if class_ids is None else class_ids[k], pixels)
            token = self.collection.token(
                item_id, layout.item_path(self.layout, shard, item_id, self.fmt), traits
            )
            files[join(self.root, layout.token_path(item_id))] = token_bytes(token)
            ranked.append(traits)
        dirs = [join(self.root, layout.TOKENS_DIR)]
        done = self._count_batch(shard, ids, ranked)
        if done is not None:
            files[join(self.root, layout.traits_summary_path(shard))] = done.summary_bytes()
            dirs.append(join(self.root, layout.TRAITS_DIR))
        first = layout.token_path(int(ids[0]))

        def put():
            for d in dirs:
                self.fs.makedirs(d, exist_ok=True)  # local folders; a no-op on object stores
            self.fs.pipe(files)

        retry(put, f"shard {shard}: writing {self.uri}/{layout.TOKENS_DIR}/ ({len(ids)} tokens from {first})")

    def _count_batch(self, shard: int, ids, ranked: list[dict[str, str]]) -> _ShardTally | None:
        """Add a batch to its shard's tally; the tally once it covers the whole shard, else None.
        Tallies of attempts that failed midway are dropped, oldest first, beyond OPEN_TALLIES."""
        with self._lock:
            tally = self._tallies.pop(shard, None)
            if tally is None:
                tally = _ShardTally(shard, *_shard_range(self.count, self.shard_size, shard))
            if tally.add(ids, ranked):
                return tally
            self._tallies[shard] = tally  # now the newest
            while len(self._tallies) > OPEN_TALLIES:
                self._tallies.pop(next(iter(self._tallies)))
            return None


def read_tokens(fs, root: str, ids: Iterable[int]) -> Iterator[tuple[int, dict]]:
    """(id, token) for each id, READ_CHUNK files per batched request; StorageError when one is missing."""
    ids = list(ids)
    for lo in range(0, len(ids), READ_CHUNK):
        chunk = ids[lo : lo + READ_CHUNK]
        paths = [join(root, layout.token_path(i)) for i in chunk]
        found = fs.cat(paths, on_error="return")
        for item_id, path in zip(chunk, paths):
            data = found.get(path)
            if data is None or isinstance(data, BaseException):
                why = (
                    "is missing" if data is None or isinstance(data, FileNotFoundError) else f"failed: {data}"
                )
                raise StorageError(f"{layout.token_path(item_id)} {why}; re-run the job to rewrite its shard")
            try:
                yield item_id, json.loads(data)
            except json.JSONDecodeError as exc:
                raise StorageError(f"{layout.token_path(item_id)} is not valid JSON ({exc})") from None


def has_tokens(fs, root: str) -> bool:
    return fs.exists(join(root, layout.token_path(0)))


def rarity(traits: Iterable[dict[str, str]]) -> tuple[int, dict]:
    """(item count, {trait_type: {value: {"count", "share"}}}), values by count (descending) then name.
    Traits in NOT_RANKED (unique per item) are left out."""
    counts: dict[str, Counter] = {}
    n = 0
    for item in traits:
        n += 1
        _count(counts, item)
    return n, rarity_table(n, counts)


def rarity_table(n: int, counts: dict[str, Counter]) -> dict:
    """{trait_type: {value: {"count", "share"}}} of `n` items' counts, values by count then name."""
    return {
        k: {
            v: {"count": c, "share": round(c / n, 6)}
            for v, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        }
        for k, counter in counts.items()
    }


def collection_record(market: MarketConfig, count: int, table: dict, job: dict) -> dict:
    return {
        "name": market.name,
        "description": market.description,
        "standard": OPENSEA,
        "item_count": count,
        "base_uri": market.base_uri,
        "model_id": job.get("model_id"),
        "job_id": job.get("job_id"),
        "rarity": table,
        "rarity_excludes": list(NOT_RANKED),
    }


def _listed_summaries(fs, root: str) -> set[int]:
    """Shard numbers with a trait summary: one listing of tokens/_traits/ (empty when it does not exist)."""
    traits_dir = join(root, layout.TRAITS_DIR)
    fs.invalidate_cache(traits_dir)  # object-store listings are cached per filesystem instance
    try:
        names = fs.ls(traits_dir, detail=False)
    except FileNotFoundError:
        return set()
    return {k for k in map(layout.parse_traits_summary_name, names) if k is not None}


def _summary_counts(data, shard: int, lo: int, hi: int) -> dict[str, dict[str, int]] | None:
    """The trait counts of a summary file's bytes, or None (logged) when it is unreadable or not the
    shard's full [lo, hi) range."""
    if data is None or isinstance(data, BaseException):
        return None
    rel = layout.traits_summary_path(shard)
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:
        log.warning("%s is not valid JSON (%s); counting the shard from its tokens", rel, exc)
        return None
    if not isinstance(record, dict):
        record = {}
    traits = record.get("traits")
    if (
        record.get("shard") != shard
        or record.get("ids") != [lo, hi]
        or record.get("items") != hi - lo
        or not isinstance(traits, dict)
        or not all(
            isinstance(v, dict) and all(isinstance(c, int) for c in v.values()) for v in traits.values()
        )
    ):
        log.warning("%s does not describe ids %d..%d; counting the shard from its tokens", rel, lo, hi - 1)
        return None
    return traits


def trait_counts(fs, root: str, count: int, shard_size: int) -> dict[str, Counter]:
    """The ranked-trait counts of all `count` items: the sum of the shard summaries, READ_CHUNK per
    batched request; a shard without a (valid) summary is counted from its tokens, with a log line."""
    num_shards = -(-count // shard_size)
    listed = _listed_summaries(fs, root)
    counts: dict[str, Counter] = {}
    run: list[int] = []  # [lo, hi): consecutive shards still to count from their tokens
    from_tokens = 0

    def flush():
        if run:
            for _, tok in read_tokens(fs, root, range(*run)):
                _count(counts, flat_traits(tok))
            run.clear()

    for a in range(0, num_shards, READ_CHUNK):
        chunk = range(a, min(a + READ_CHUNK, num_shards))
        paths = {k: join(root, layout.traits_summary_path(k)) for k in chunk if k in listed}
        found = fs.cat(list(paths.values()), on_error="return") if paths else {}
        for k in chunk:
            lo, hi = _shard_range(count, shard_size, k)
            traits = _summary_counts(found.get(paths.get(k)), k, lo, hi)
            if traits is None:  # keep id order: later shards' new traits stay after this one's
                run[:] = [run[0] if run else lo, hi]
                from_tokens += 1
                continue
            flush()
            for trait, values in traits.items():
                counts.setdefault(trait, Counter()).update(values)
    if from_tokens:
        log.warning(
            "%d of %d shards have no trait summary in %s/ (an output written before summaries?): "
            "reading their tokens",
            from_tokens,
            num_shards,
            layout.TRAITS_DIR,
        )
    flush()
    return counts


def write_collection(cfg: GenerateConfig, job: dict) -> dict | None:
    """collection.json from the shards' trait summaries (None, and nothing written, unless standard is
    opensea)."""
    if cfg.market.standard != OPENSEA:
        return None
    fs, root = get_fs(cfg.output, cfg.storage.options)
    n = cfg.count
    table = rarity_table(n, trait_counts(fs, root, n, cfg.shard_size))
    record = collection_record(cfg.market, n, table, job)
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    retry(
        lambda: fs.pipe_file(join(root, layout.COLLECTION), data),
        f"writing {redact(cfg.output)}/collection.json",
    )
    log.info("collection.json: %d items, traits %s", n, ", ".join(table))
    return record
