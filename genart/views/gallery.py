"""`genart gallery URI`: a static HTML page, index.html beside the collection, that needs no server.

Thumbnails link to the images by relative path (layout files), so the page works from a local folder, a
bucket website or IPFS alike; images that live inside Parquet files are inlined as data: URIs. Each card
lists the item's traits; one select per trait filters the cards in plain inline JavaScript, and the
filter is kept in the URL's #fragment (`index.html#class=3&brightness=dark`) so filtered views can be
shared. Once the page has loaded, <body data-images-loaded> holds the number of decoded images.
"""

from __future__ import annotations

import base64
import html
import json
import logging

from genart import market
from genart.errors import ConfigError
from genart.images import encode
from genart.storage import safejson
from genart.storage.fs import join
from genart.views.limits import MAX_SHEET_ITEMS
from genart.views.preview import Source, first_items, write_bytes

log = logging.getLogger(__name__)

INDEX = "index.html"
THUMB_PX = 160

STYLE = """
body{font:13px/1.4 system-ui,sans-serif;background:#f4f1ea;color:#333;margin:16px}
h1{font-size:20px;margin:0 0 4px} header p{margin:2px 0 8px}
.filters label{margin-right:14px;white-space:nowrap}
.grid{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0 0;padding:0}
.card{width:170px;background:#fff;border:1px solid #ddd;padding:5px;margin:0}
.card img{width:160px;height:160px;image-rendering:pixelated;display:block}
.card figcaption{font-weight:600;margin:3px 0 0}
.card dl{margin:2px 0 0;font-size:11px;display:grid;grid-template-columns:auto 1fr;column-gap:4px}
.card dt{color:#777} .card dd{margin:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.hidden{display:none}
"""

SCRIPT = """
(function () {
  var key = function (s) { return s.trim().toLowerCase().replace(/[\\s_-]+/g, "_"); };
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-trait]"));
  var traits = cards.map(function (c) { return JSON.parse(c.getAttribute("data-traits")); });
  function apply() {
    var want = {};
    selects.forEach(function (s) { if (s.value) want[s.getAttribute("data-trait")] = s.value; });
    var shown = 0;
    cards.forEach(function (c, i) {
      var ok = Object.keys(want).every(function (k) { return traits[i][k] === want[k]; });
      c.classList.toggle("hidden", !ok);
      if (ok) shown++;
    });
    document.getElementById("shown").textContent = shown;
    document.body.setAttribute("data-shown", shown);
    var hash = Object.keys(want).map(function (k) {
      return encodeURIComponent(key(k)) + "=" + encodeURIComponent(want[k]);
    }).join("&");
    try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); }
    catch (e) { /* some file:// contexts refuse history changes: the filter still applies */ }
  }
  new URLSearchParams(location.hash.slice(1)).forEach(function (v, k) {
    selects.forEach(function (s) {
      if (key(s.getAttribute("data-trait")) === key(k)) {
        Array.prototype.forEach.call(s.options, function (o) {
          if (o.value.toLowerCase() === v.toLowerCase()) s.value = o.value;
        });
      }
    });
  });
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
  function count() {
    var n = Array.prototype.filter.call(document.images, function (im) {
      return im.complete && im.naturalWidth > 0;
    }).length;
    document.body.setAttribute("data-images-loaded", n);
  }
  Array.prototype.forEach.call(document.images, function (im) { im.addEventListener("load", count); });
  window.addEventListener("load", count);
  count();
})();
"""


def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _src(item) -> str:
    if item.path:
        return _esc(item.path)
    return "data:image/png;base64," + base64.b64encode(encode(item.image, "png")).decode()


def _card(item) -> str:
    """One item's figure. Every value is escaped; the id must be an integer (it is written in attributes)."""
    if not isinstance(item.id, int) or isinstance(item.id, bool):
        raise TypeError(f"item ids are integers, got {item.id!r}")
    rows = "".join(f"<dt>{_esc(k)}</dt><dd title='{_esc(v)}'>{_esc(v)}</dd>" for k, v in item.traits.items())
    return (
        f'<figure class="card" data-id="{item.id}" data-traits="{_esc(json.dumps(item.traits))}">'
        f'<img src="{_src(item)}" alt="#{item.id}" width="{THUMB_PX}" height="{THUMB_PX}">'
        f"<figcaption>#{item.id}</figcaption><dl>{rows}</dl></figure>"
    )


def _filters(table: dict) -> str:
    out = []
    for trait, values in table.items():
        options = "".join(
            f'<option value="{_esc(v)}">{_esc(v)} ({c["count"]})</option>' for v, c in values.items()
        )
        out.append(
            f'<label>{_esc(trait)} <select data-trait="{_esc(trait)}">'
            f'<option value="">any</option>{options}</select></label>'
        )
    return "".join(out)


def render(title: str, description: str, items: list, total: int) -> str:
    """The page for `items` (the first of `total` items)."""
    n, table = market.rarity(it.traits for it in items)
    more = f" (the first {n} of {total})" if total > n else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>\n"
        f'<body data-images-loaded="0" data-shown="{n}"><header><h1>{_esc(title)}</h1>'
        f"<p>{_esc(description)}</p><p><span id='shown'>{n}</span> of {n} items shown{_esc(more)}</p>"
        f'<form class="filters">{_filters(table)}</form></header>\n<main class="grid">\n'
        + "\n".join(_card(it) for it in items)
        + f"\n</main>\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


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


def gallery(uri: str, limit: int = 1000, model: str | None = None) -> tuple[str, int]:
    """Write URI/index.html for the first `limit` items; returns (where, items shown). `model`: a bundle to
    take class names from. Raises ConfigError for a limit outside 1..MAX_SHEET_ITEMS, StorageError for a
    tampered or broken output (see preview.Source)."""
    if not 1 <= limit <= MAX_SHEET_ITEMS:
        raise ConfigError(f"--limit {limit}: allowed 1..{MAX_SHEET_ITEMS}")
    source = Source(uri, model=model)
    items = first_items(source, limit)
    title, description = _title(source)
    page = render(title, description, items, source.table.num_rows)
    target = write_bytes(join(uri.rstrip("/"), INDEX), page.encode())
    log.debug("gallery of %d items: %s", len(items), target)
    return target, len(items)
