"""`genart gallery URI`: the curation page, index.html beside the output, that needs no server.

Thumbnails link to the images by relative path (layout files), so the page works from a local folder, a
bucket website or IPFS alike; images that live inside Parquet files are inlined as data: URIs. The page
itself (keep / reject, filters, paging, "Export picks") is genart/views/gallery_page.py; `genart gallery
--serve` (genart/views/serve.py) serves it and writes the picks to the output.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass, field

from genart import market
from genart.errors import ConfigError
from genart.images import encode
from genart.storage import safejson
from genart.storage.fs import join
from genart.views.gallery_page import render
from genart.views.limits import MAX_GALLERY_ITEMS
from genart.views.preview import Source, write_bytes

log = logging.getLogger(__name__)

INDEX = "index.html"


def _src(item) -> str:
    if item.path:
        return item.path
    return "data:image/png;base64," + base64.b64encode(encode(item.image, "png")).decode()


def _rows(source: Source, limit: int) -> tuple[list[str], list[list], list[dict]]:
    """(trait names in first-seen order, [id, src, [values]] per item, each item's traits) of the first
    `limit` items. Images are decoded one chunk at a time and dropped (only data: URIs are kept)."""
    names: dict[str, None] = {}
    ids, srcs, traits = [], [], []
    for item in source.items():
        if not isinstance(item.id, int) or isinstance(item.id, bool):
            raise TypeError(f"item ids are integers, got {item.id!r}")
        names.update(dict.fromkeys(item.traits))
        ids.append(item.id)
        srcs.append(_src(item))
        traits.append(item.traits)
        if len(ids) >= limit:
            break
    order = list(names)
    rows = [[i, src, [str(t.get(k, "")) for k in order]] for i, src, t in zip(ids, srcs, traits)]
    return order, rows, traits


def output_uri(source: Source) -> str:
    """The output as the picks name it: an absolute path for a local folder (so `genart collect` finds it
    from any directory), else the redacted URI."""
    where = source.where
    return where if "://" in where else os.path.abspath(where)


def _title(source: Source) -> tuple[str, str]:
    """(name, description) from collection.json when it has them as strings, else the folder's name."""
    record = {}
    try:
        record = safejson.loads(source.fs.cat_file(join(source.root, "collection.json")))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        pass
    record = record if isinstance(record, dict) else {}
    name, description = record.get("name"), record.get("description")
    fallback = source.where.rstrip("/").rsplit("/", 1)[-1] or source.where
    return (
        name if isinstance(name, str) and name else fallback,
        description if isinstance(description, str) else "",
    )


@dataclass(frozen=True)
class Page:
    target: str  # where index.html was written
    items: int  # items on the page
    output: str  # the output as the page's picks name it (output_uri)
    job_id: str  # the job the picks belong to ("dataset:..." for a synthesized dataset)
    source: Source = field(repr=False)


def gallery(uri: str, limit: int = MAX_GALLERY_ITEMS, model: str | None = None) -> tuple[str, int]:
    """Write URI/index.html, the curation page of the first `limit` items (id order); returns (where, items
    shown). `model`: a bundle to take class names from. Raises ConfigError for a limit outside
    1..MAX_GALLERY_ITEMS, StorageError for a tampered or broken output (see preview.Source)."""
    page = build(uri, limit, model)
    return page.target, page.items


def build(uri: str, limit: int = MAX_GALLERY_ITEMS, model: str | None = None) -> Page:
    """gallery(), returning the Page (what `--serve` needs to check the picks it is sent)."""
    if not 1 <= limit <= MAX_GALLERY_ITEMS:
        raise ConfigError(f"--limit {limit}: allowed 1..{MAX_GALLERY_ITEMS}")
    source = Source(uri, model=model)
    names, rows, traits = _rows(source, limit)
    n, table = market.rarity(traits)
    total = source.table.num_rows
    more = f" (the first {n} of {total})" if total > n else ""
    job_id = source.job.get("job_id") if source.kind == "generation" else None
    head = {
        "output": output_uri(source),
        "job_id": job_id if isinstance(job_id, str) else f"dataset:{source.where}",
    }
    title, description = _title(source)
    page = render(title, description, head, names, rows, table, more)
    target = write_bytes(join(uri.rstrip("/"), INDEX), page.encode())
    log.debug("gallery of %d items: %s", len(rows), target)
    return Page(target, len(rows), head["output"], head["job_id"], source)
