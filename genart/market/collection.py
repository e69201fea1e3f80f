"""collection.json: the item count and the trait rarity table, summed from the per-shard trait summaries."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable

from genart.config.generate import GenerateConfig, MarketConfig
from genart.ids import num_shards, shard_range
from genart.market.tokens import (
    DEFAULT_SUFFIX,
    NOT_RANKED,
    OPENSEA,
    READ_CHUNK,
    _count,
    flat_traits,
    json_put_options,
    read_tokens,
)
from genart.storage import layout, safejson
from genart.storage.fs import cat_files, join
from genart.storage.output import Output
from genart.storage.retry import retry

log = logging.getLogger(__name__)


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
        record = safejson.loads(data)
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


def trait_counts(
    fs, root: str, count: int, shard_size: int, suffix: str = DEFAULT_SUFFIX
) -> dict[str, Counter]:
    """The ranked-trait counts of all `count` items: the sum of the shard summaries, READ_CHUNK per
    batched request; a shard without a (valid) summary is counted from its tokens, with a log line."""
    n_shards = num_shards(count, shard_size)
    listed = _listed_summaries(fs, root)
    counts: dict[str, Counter] = {}
    run: list[int] = []  # [lo, hi): consecutive shards still to count from their tokens
    from_tokens = 0

    def flush():
        if run:
            for _, tok in read_tokens(fs, root, range(*run), suffix):
                _count(counts, flat_traits(tok))
            run.clear()

    for a in range(0, n_shards, READ_CHUNK):
        chunk = range(a, min(a + READ_CHUNK, n_shards))
        paths = {k: join(root, layout.traits_summary_path(k)) for k in chunk if k in listed}
        found = cat_files(fs, list(paths.values())) if paths else {}
        for k in chunk:
            lo, hi = shard_range(k, shard_size, count)
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
            n_shards,
            layout.TRAITS_DIR,
        )
    flush()
    return counts


def write_collection(cfg: GenerateConfig, job: dict, out: Output) -> dict | None:
    """collection.json from the shards' trait summaries (None, and nothing written, unless standard is
    opensea). `out`: cfg.output, already opened (the driver's). StorageError when a
    token or summary cannot be read, or the write still fails after its retries."""
    if cfg.market.standard != OPENSEA:
        return None
    fs, root = out.fs, out.root
    n = cfg.count
    table = rarity_table(n, trait_counts(fs, root, n, cfg.shard_size, cfg.market.token_suffix))
    record = collection_record(cfg.market, n, table, job)
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    retry(
        lambda: fs.pipe_file(join(root, layout.COLLECTION), data, **json_put_options(fs)),
        f"writing {out.name}/collection.json",
    )
    log.info("collection.json: %d items, traits %s", n, ", ".join(table))
    return record
