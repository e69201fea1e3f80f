"""Collections for digital-art markets: OpenSea / ERC-721 token metadata and the collection's rarity table.

Plain Python (no Ray). With `market.standard: opensea` a generation output also holds

    tokens/{id}.json    one per item (name, description, image = base_uri + path, attributes); a replica
                        writes a shard's tokens before that shard's metadata commit, so every committed
                        item has its token, and a retried shard rewrites the same keys with the same bytes
    collection.json     name, description, item count and the trait rarity table; the driver writes it
                        from the tokens themselves, before _SUCCESS

Computed traits depend only on an item's pixels: Background (the named palette colour most common on the
image border), Dominant colour (the most common palette colour among the other pixels: the subject's
colour) and Brightness (a bucket of the mean Rec. 601 luminance). The Seed attribute is a string: seeds
are 63-bit and JavaScript numbers would round them, and the seed regenerates the item exactly.
"""

from __future__ import annotations

import json
import logging
import re
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
            "name": f"{self.market.name} #{int(item_id)}",
            "description": self.market.description,
            "image": item_url(self.market.base_uri, path),
            "attributes": [{"trait_type": k, "value": v} for k, v in traits.items()],
        }


def token_bytes(token: dict) -> bytes:
    return json.dumps(token, indent=2, ensure_ascii=False).encode()


def flat_traits(token: dict) -> dict[str, str]:
    """A token's attributes as {trait_type: value}."""
    return {a["trait_type"]: a["value"] for a in token.get("attributes", [])}


class TokenWriter:
    """Writes tokens/{id}.json for a replica's batches; does nothing unless `market.standard` is opensea."""

    def __init__(self, cfg: GenerateConfig, bundle_meta: dict):
        self.enabled = cfg.market.standard == OPENSEA
        self.fmt, self.layout = cfg.image.format, cfg.layout
        self.uri = redact(cfg.output)
        if self.enabled:
            self.fs, self.root = get_fs(cfg.output, cfg.storage.options)
            self.collection = Collection.from_bundle_meta(cfg.market, bundle_meta)

    def write(self, shard: int, ids, seeds, class_ids, images: np.ndarray) -> None:
        """Token files of one batch (one request per file, concurrent where the backend allows)."""
        if not self.enabled:
            return
        files = {}
        for k, pixels in enumerate(pixel_traits(images)):
            item_id = int(ids[k])
            traits = self.collection.traits(seeds[k], None if class_ids is None else class_ids[k], pixels)
            token = self.collection.token(
                item_id, layout.item_path(self.layout, shard, item_id, self.fmt), traits
            )
            files[join(self.root, layout.token_path(item_id))] = token_bytes(token)
        tokens_dir = join(self.root, layout.TOKENS_DIR)
        first = layout.token_path(int(ids[0]))

        def put():
            self.fs.makedirs(tokens_dir, exist_ok=True)  # local folders; a no-op on object stores
            self.fs.pipe(files)

        retry(
            put, f"shard {shard}: writing {self.uri}/{layout.TOKENS_DIR}/ ({len(files)} tokens from {first})"
        )


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
        for k, v in item.items():
            if k not in NOT_RANKED:
                counts.setdefault(k, Counter())[str(v)] += 1
    table = {
        k: {
            v: {"count": c, "share": round(c / n, 6)}
            for v, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        }
        for k, counter in counts.items()
    }
    return n, table


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


def write_collection(cfg: GenerateConfig, job: dict) -> dict | None:
    """collection.json from every item's token (None, and nothing written, unless standard is opensea)."""
    if cfg.market.standard != OPENSEA:
        return None
    fs, root = get_fs(cfg.output, cfg.storage.options)
    n, table = rarity(flat_traits(tok) for _, tok in read_tokens(fs, root, range(cfg.count)))
    record = collection_record(cfg.market, n, table, job)
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    retry(
        lambda: fs.pipe_file(join(root, layout.COLLECTION), data),
        f"writing {redact(cfg.output)}/collection.json",
    )
    log.info("collection.json: %d items, traits %s", n, ", ".join(table))
    return record
