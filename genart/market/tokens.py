"""OpenSea / ERC-721 token metadata: tokens/{id}.json (or tokens/{id}, `market.token_suffix: ""`) per item
and the per-shard trait summaries, written by the replica before each shard's commit (see
genart/market/__init__.py). `storage/layout.token_path` is the one rule for a token file's name."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from genart.config.generate import GenerateConfig, MarketConfig
from genart.errors import StorageError
from genart.ids import shard_range
from genart.images import Batch
from genart.market.traits import pixel_traits
from genart.storage import layout, safejson
from genart.storage.fs import cat_files, join
from genart.storage.layout import token_path
from genart.storage.output import Output
from genart.storage.retry import retry

log = logging.getLogger(__name__)

OPENSEA = "opensea"
NOT_RANKED = ("Seed",)  # unique per item: no rarity to rank
READ_CHUNK = 1000  # token files read per request batch
OPEN_TALLIES = 8  # shards a TokenWriter counts at once (one in use; the rest: attempts that failed midway)


TOKEN_SUFFIXES = layout.TOKEN_SUFFIXES
DEFAULT_SUFFIX = ".json"
JSON_CONTENT_TYPE = "application/json"


def recorded_suffix(market: dict) -> str:
    """The token suffix of a job from its _job.json `config.market` (left out there while it is the
    default ".json"). Raises ValueError for a value no config accepts."""
    suffix = market.get("token_suffix", DEFAULT_SUFFIX)
    if suffix not in TOKEN_SUFFIXES:
        raise ValueError(f"market.token_suffix {suffix!r} is not one of {TOKEN_SUFFIXES}")
    return suffix


def json_put_options(fs) -> dict:
    """Keyword arguments for fsspec's pipe/open that store an object as application/json where the backend
    keeps a content type (S3, GCS); {} elsewhere. Token files without `.json` need it to be served as JSON."""
    protocols = set(fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    if protocols & {"s3", "s3a"}:
        return {"ContentType": JSON_CONTENT_TYPE}
    if protocols & {"gs", "gcs"}:
        return {"content_type": JSON_CONTENT_TYPE}
    return {}


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

    def __init__(self, cfg: GenerateConfig, bundle_meta: dict, out: Output):
        """`out`: cfg.output, already opened (the replica's)."""
        self.enabled = cfg.market.standard == OPENSEA
        self.fmt, self.layout, self.suffix = cfg.image.format, cfg.layout, cfg.market.token_suffix
        self.uri = out.name
        if self.enabled:
            self.fs, self.root = out.fs, out.root
            self.collection = Collection.from_bundle_meta(cfg.market, bundle_meta)
            self.count, self.shard_size = cfg.count, cfg.shard_size
            self._tallies: dict[int, _ShardTally] = {}  # shard -> its traits until complete, oldest first
            self._lock = threading.Lock()  # write() may run on several encode threads at once

    def write(self, shard: int, batch: Batch) -> None:
        """Token files of one batch of shard `shard` (its ids, seeds, class_ids and uint8 (N, H, W, C)
        images; one request per file, concurrent where the backend allows); with the batch that completes
        the shard, also the shard's trait summary (tokens/_traits/part-NNNNN.json). Raises StorageError once
        the bounded retries are spent."""
        if not self.enabled:
            return
        ids, seeds, class_ids = batch.ids, batch.seeds, batch.class_ids
        files, ranked = {}, []
        for k, pixels in enumerate(pixel_traits(batch.images)):
            item_id = int(ids[k])
            traits = self.collection.traits(seeds[k], None if class_ids is None else class_ids[k], pixels)
            token = self.collection.token(
                item_id, layout.item_path(self.layout, shard, item_id, self.fmt), traits
            )
            files[join(self.root, token_path(item_id, self.suffix))] = token_bytes(token)
            ranked.append(traits)
        dirs = [join(self.root, layout.TOKENS_DIR)]
        done = self._count_batch(shard, ids, ranked)
        if done is not None:
            files[join(self.root, layout.traits_summary_path(shard))] = done.summary_bytes()
            dirs.append(join(self.root, layout.TRAITS_DIR))
        first = token_path(int(ids[0]), self.suffix)
        options = json_put_options(self.fs)  # every file here is JSON, whatever its name

        def put():
            for d in dirs:
                self.fs.makedirs(d, exist_ok=True)  # local folders; a no-op on object stores
            self.fs.pipe(files, **options)

        retry(put, f"shard {shard}: writing {self.uri}/{layout.TOKENS_DIR}/ ({len(ids)} tokens from {first})")

    def _count_batch(self, shard: int, ids, ranked: list[dict[str, str]]) -> _ShardTally | None:
        """Add a batch to its shard's tally; the tally once it covers the whole shard, else None.
        Tallies of attempts that failed midway are dropped, oldest first, beyond OPEN_TALLIES."""
        with self._lock:
            tally = self._tallies.pop(shard, None)
            if tally is None:
                tally = _ShardTally(shard, *shard_range(shard, self.shard_size, self.count))
            if tally.add(ids, ranked):
                return tally
            self._tallies[shard] = tally  # now the newest
            while len(self._tallies) > OPEN_TALLIES:
                self._tallies.pop(next(iter(self._tallies)))
            return None


def read_tokens(
    fs, root: str, ids: Iterable[int], suffix: str = DEFAULT_SUFFIX
) -> Iterator[tuple[int, dict]]:
    """(id, token) for each id, READ_CHUNK files per batched request; StorageError when one is missing or
    not JSON."""
    ids = list(ids)
    for lo in range(0, len(ids), READ_CHUNK):
        chunk = ids[lo : lo + READ_CHUNK]
        paths = [join(root, token_path(i, suffix)) for i in chunk]
        found = cat_files(fs, paths)
        for item_id, path in zip(chunk, paths):
            data = found.get(path)
            if data is None or isinstance(data, BaseException):
                why = (
                    "is missing" if data is None or isinstance(data, FileNotFoundError) else f"failed: {data}"
                )
                raise StorageError(
                    f"{token_path(item_id, suffix)} {why}; re-run the job to rewrite its shard"
                )
            try:
                yield item_id, safejson.loads(data)
            except json.JSONDecodeError as exc:
                raise StorageError(f"{token_path(item_id, suffix)} is not valid JSON ({exc})") from None


def has_tokens(fs, root: str, suffix: str = DEFAULT_SUFFIX) -> bool:
    return fs.exists(join(root, token_path(0, suffix)))
