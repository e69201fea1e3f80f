"""The curation page's HTML, CSS and inline JavaScript (`genart gallery`): no network, no library.

The items travel as one JSON block (`<script type="application/json" id="items">`): {"output", "job_id",
"traits": [trait names], "items": [[id, image src, [trait values]], ...]}; the script shows PAGE cards at a
time (so 100,000 items cost one JSON parse, never 100,000 DOM nodes), with `loading="lazy"` images.

What the page does: keep / reject each piece (its buttons, or the keyboard: arrows move, k keep, x reject,
u undecide, PageUp/PageDown turn pages); the choices persist in localStorage under `genart-picks:{job_id}`;
a counter shows kept / rejected / left; filters by status (all, kept, undecided, rejected) and by trait
(kept in the URL's #fragment, e.g. `#class=3&status=kept`); "Export picks" downloads picks.json. When
served by `genart gallery --serve` (<body data-save="...">), every change is also PUT to that URL
(OUT/curation/picks.json), and the server's picks seed an empty browser store.
Test hooks: <body data-shown (items in the filtered view), data-images-loaded (decoded images on the
page), data-saved (picks the server has acknowledged)>.
"""

from __future__ import annotations

import html
import json

PAGE = 200  # cards on one page
THUMB_PX = 160

STYLE = """
body{font:13px/1.4 system-ui,sans-serif;background:#f4f1ea;color:#333;margin:16px}
h1{font-size:20px;margin:0 0 4px} header p{margin:2px 0 8px}
.filters label{margin-right:14px;white-space:nowrap}
.bar{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:6px 0}
.counter b{font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0 0;padding:0}
.card{width:170px;background:#fff;border:3px solid #ddd;padding:5px;margin:0;outline:none}
.card img{width:160px;height:160px;image-rendering:pixelated;display:block;cursor:pointer}
.card figcaption{font-weight:600;margin:3px 0 0;display:flex;gap:4px;align-items:center}
.card figcaption span{flex:1}
.card button{font-size:11px;padding:1px 6px}
.card.kept{border-color:#2e8b57;background:#eef8f1} .card.rejected{border-color:#b33;opacity:.45}
.card.cursor{box-shadow:0 0 0 3px #1e6fd9}
.card dl{margin:2px 0 0;font-size:11px;display:grid;grid-template-columns:auto 1fr;column-gap:4px}
.card dt{color:#777} .card dd{margin:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
kbd{border:1px solid #aaa;border-radius:3px;padding:0 3px;background:#fff}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("items").textContent);
  var items = data.items, names = data.traits, PAGE = data.page;
  var body = document.body, grid = document.getElementById("grid");
  var storeKey = "genart-picks:" + data.job_id;
  var saveUrl = body.getAttribute("data-save") || "";
  var state = {};  // id -> "k" | "x"
  try {
    var held = JSON.parse(localStorage.getItem(storeKey) || "null");
    if (held) { load(held); }
  } catch (e) { /* a store this page cannot read: start undecided */ }
  function load(p) {
    state = {};
    (p.keep || []).forEach(function (i) { state[i] = "k"; });
    (p.reject || []).forEach(function (i) { state[i] = "x"; });
  }
  function picks() {
    var keep = [], reject = [];
    items.forEach(function (it) {
      var s = state[it[0]];
      if (s === "k") keep.push(it[0]); else if (s === "x") reject.push(it[0]);
    });
    return {output: data.output, job_id: data.job_id, keep: keep, reject: reject};
  }
  var saveTimer = null, saved = 0;
  function persist() {
    var p = picks();
    try { localStorage.setItem(storeKey, JSON.stringify({keep: p.keep, reject: p.reject})); }
    catch (e) { document.getElementById("warn").textContent = "the browser refused to store the picks: " + e; }
    if (saveUrl) {
      clearTimeout(saveTimer);
      saveTimer = setTimeout(function () {
        var body_ = JSON.stringify(picks());
        fetch(saveUrl, {method: "PUT", headers: {"Content-Type": "application/json"}, body: body_})
          .then(function (r) {
            if (!r.ok) throw new Error("HTTP " + r.status);
            saved++; body.setAttribute("data-saved", saved);
            document.getElementById("warn").textContent = "";
          })
          .catch(function (e) {
            document.getElementById("warn").textContent = "not saved to the output: " + e.message;
          });
      }, 300);
    }
  }
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-trait]"));
  var statusSel = document.getElementById("status");
  var key = function (s) { return s.trim().toLowerCase().replace(/[\s_-]+/g, "_"); };
  var view = [], page = 0, cursor = 0;
  function matcher() {  // the filters read once per scan, not once per item
    var st = statusSel.value, want = [];
    selects.forEach(function (sel) {
      if (sel.value) want.push([+sel.getAttribute("data-index"), sel.value]);
    });
    return function (it) {
      var s = state[it[0]];
      if (st === "kept" && s !== "k") return false;
      if (st === "rejected" && s !== "x") return false;
      if (st === "undecided" && s) return false;
      for (var j = 0; j < want.length; j++) if (it[2][want[j][0]] !== want[j][1]) return false;
      return true;
    };
  }
  function counter() {
    var k = 0, x = 0;
    for (var id in state) { if (state[id] === "k") k++; else if (state[id] === "x") x++; }
    document.getElementById("kept").textContent = k;
    document.getElementById("rejected").textContent = x;
    document.getElementById("left").textContent = items.length - k - x;
    document.getElementById("shown").textContent = view.length;
    body.setAttribute("data-shown", view.length);
    body.setAttribute("data-kept", k);
    body.setAttribute("data-rejected", x);
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function cardHtml(it, n) {
    var s = state[it[0]], cls = "card" + (s === "k" ? " kept" : s === "x" ? " rejected" : "");
    var rows = names.map(function (name, j) {
      return "<dt>" + esc(name) + "</dt><dd title=\"" + esc(it[2][j]) + "\">" + esc(it[2][j]) + "</dd>";
    }).join("");
    return "<figure class=\"" + cls + "\" data-id=\"" + it[0] + "\" data-n=\"" + n + "\" tabindex=\"-1\">" +
      "<img loading=\"lazy\" decoding=\"async\" src=\"" + esc(it[1]) + "\" alt=\"#" + it[0] +
      "\" width=\"" + data.thumb + "\" height=\"" + data.thumb + "\">" +
      "<figcaption><span>#" + it[0] + "</span><button type=\"button\" class=\"keep\">keep</button>" +
      "<button type=\"button\" class=\"reject\">reject</button></figcaption><dl>" + rows + "</dl></figure>";
  }
  function pages() { return Math.max(1, Math.ceil(view.length / PAGE)); }
  function render() {
    page = Math.min(page, pages() - 1);
    var lo = page * PAGE, hi = Math.min(view.length, lo + PAGE), out = [];
    for (var n = lo; n < hi; n++) out.push(cardHtml(items[view[n]], n));
    grid.innerHTML = out.join("");
    document.getElementById("page").textContent = (page + 1) + " of " + pages();
    body.setAttribute("data-page", page + 1);
    Array.prototype.forEach.call(grid.querySelectorAll("img"), function (im) {
      im.addEventListener("load", countImages);
    });
    countImages();
    mark();
  }
  function countImages() {
    var n = Array.prototype.filter.call(grid.querySelectorAll("img"), function (im) {
      return im.complete && im.naturalWidth > 0;
    }).length;
    body.setAttribute("data-images-loaded", n);
  }
  function mark() {
    var old = grid.querySelector(".card.cursor");
    if (old) old.classList.remove("cursor");
    var el = grid.querySelector("[data-n=\"" + cursor + "\"]");
    if (el) { el.classList.add("cursor"); el.focus({preventScroll: true}); el.scrollIntoView({block: "nearest"}); }
    body.setAttribute("data-cursor", view.length ? items[view[cursor]][0] : "");
  }
  function apply() {
    view = [];
    var matches = matcher();
    for (var i = 0; i < items.length; i++) if (matches(items[i])) view.push(i);
    cursor = Math.min(cursor, Math.max(0, view.length - 1));
    page = Math.floor(cursor / PAGE);
    var want = [];
    selects.forEach(function (s) {
      if (s.value) want.push(encodeURIComponent(key(s.getAttribute("data-trait"))) + "=" + encodeURIComponent(s.value));
    });
    if (statusSel.value) want.push("status=" + statusSel.value);
    try { history.replaceState(null, "", want.length ? "#" + want.join("&") : location.pathname + location.search); }
    catch (e) { /* some file:// contexts refuse history changes: the filter still applies */ }
    counter();
    render();
  }
  function moveTo(n) {
    if (!view.length) return;
    cursor = Math.max(0, Math.min(view.length - 1, n));
    if (Math.floor(cursor / PAGE) !== page) { page = Math.floor(cursor / PAGE); render(); } else { mark(); }
  }
  function columns() {
    var cards = grid.querySelectorAll(".card"), n = 0;
    if (!cards.length) return 1;
    var top = cards[0].offsetTop;
    while (n < cards.length && cards[n].offsetTop === top) n++;
    return Math.max(1, n);
  }
  function decide(n, what) {
    if (!view.length) return;
    var id = items[view[n]][0];
    if (state[id] === what || what === "") delete state[id]; else state[id] = what;
    persist();
    var el = grid.querySelector("[data-n=\"" + n + "\"]");
    if (el) {
      el.classList.toggle("kept", state[id] === "k");
      el.classList.toggle("rejected", state[id] === "x");
    }
    counter();
  }
  grid.addEventListener("click", function (ev) {
    var card = ev.target.closest(".card");
    if (!card) return;
    var n = +card.getAttribute("data-n");
    cursor = n; mark();
    if (ev.target.classList.contains("keep")) decide(n, "k");
    else if (ev.target.classList.contains("reject")) decide(n, "x");
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target.tagName === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var k = ev.key, handled = true;
    if (k === "ArrowRight") moveTo(cursor + 1);
    else if (k === "ArrowLeft") moveTo(cursor - 1);
    else if (k === "ArrowDown") moveTo(cursor + columns());
    else if (k === "ArrowUp") moveTo(cursor - columns());
    else if (k === "PageDown") moveTo((page + 1) * PAGE);
    else if (k === "PageUp") moveTo((page - 1) * PAGE);
    else if (k === "k" || k === "K") decide(cursor, "k");
    else if (k === "x" || k === "X") decide(cursor, "x");
    else if (k === "u" || k === "U") decide(cursor, "");
    else handled = false;
    if (handled) ev.preventDefault();
  });
  document.getElementById("prev").addEventListener("click", function () { moveTo((page - 1) * PAGE); });
  document.getElementById("next").addEventListener("click", function () { moveTo((page + 1) * PAGE); });
  document.getElementById("export").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify(picks(), null, 1) + "\n"], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "picks.json";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });
  new URLSearchParams(location.hash.slice(1)).forEach(function (v, k) {
    if (k === "status") { statusSel.value = v; return; }
    selects.forEach(function (s) {
      if (key(s.getAttribute("data-trait")) === key(k)) {
        Array.prototype.forEach.call(s.options, function (o) {
          if (o.value.toLowerCase() === v.toLowerCase()) s.value = o.value;
        });
      }
    });
  });
  selects.concat([statusSel]).forEach(function (s) { s.addEventListener("change", function () { cursor = 0; apply(); }); });
  apply();
  if (saveUrl) {
    fetch(saveUrl, {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : null; }).then(function (p) {
      if (p && p.job_id === data.job_id && !Object.keys(state).length) { load(p); persist(); apply(); }
      body.setAttribute("data-server-read", "1");
    }).catch(function () { body.setAttribute("data-server-read", "1"); });
  }
})();
"""


def esc(v) -> str:
    return html.escape(str(v), quote=True)


def _filters(table: dict, names: list[str]) -> str:
    out = [
        '<label>status <select id="status"><option value="">all</option><option value="kept">kept</option>'
        '<option value="undecided">undecided</option><option value="rejected">rejected</option></select></label>'
    ]
    for trait, values in table.items():
        options = "".join(
            f'<option value="{esc(v)}">{esc(v)} ({c["count"]})</option>' for v, c in values.items()
        )
        out.append(
            f'<label>{esc(trait)} <select data-trait="{esc(trait)}" data-index="{names.index(trait)}">'
            f'<option value="">any</option>{options}</select></label>'
        )
    return "".join(out)


def _json_block(record: dict) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can close or confuse the element."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(
    title: str, description: str, head: dict, names: list[str], rows: list[list], table: dict, more: str
) -> str:
    """The whole page. `head`: {"output", "job_id"}; `names`: every trait shown on a card; `rows`: [id, src,
    [its value of each of `names`]] per item; `table`: the rarity table of the filterable traits
    (genart.market.rarity, a subset of `names`); `more`: a note on items left out."""
    record = {**head, "page": PAGE, "thumb": THUMB_PX, "traits": names, "items": rows}
    n = len(rows)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
        f'<body data-images-loaded="0" data-shown="{n}" data-save=""><header><h1>{esc(title)}</h1>'
        f"<p>{esc(description)}</p>"
        f'<p class="counter">kept <b id="kept">0</b> · rejected <b id="rejected">0</b> · left <b id="left">{n}</b>'
        f" · <span id='shown'>{n}</span> of {n} items shown{esc(more)}</p>"
        f'<form class="filters">{_filters(table, names)}</form>'
        '<div class="bar"><button type="button" id="prev">&larr; prev</button><span>page <b id="page">1 of 1</b>'
        '</span><button type="button" id="next">next &rarr;</button><button type="button" id="export">'
        "Export picks</button><span><kbd>&larr;&uarr;&rarr;&darr;</kbd> move <kbd>k</kbd> keep <kbd>x</kbd> "
        'reject <kbd>u</kbd> undecide</span><span id="warn" role="status"></span></div></header>\n'
        '<main class="grid" id="grid"></main>\n'
        f'<script type="application/json" id="items">{_json_block(record)}</script>\n'
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
