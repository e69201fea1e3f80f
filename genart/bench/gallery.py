"""`genart bench gallery`: the curation page at 1,000 and 100,000 items in headless Chromium (Playwright).

For each count it writes a folder of that many small PNG files (64 distinct 32x32 images, cycled) and the
page (genart/views/gallery_page.py) listing them with six traits each, as `genart gallery` writes it for a
generated output, then opens it in Chromium (1280x900) and measures: the page's size, the first
contentful paint, the time until the first page of thumbnails has decoded, the JS heap after a garbage
collection, the DOM's node count, and how long a filter change and a keep (k) take inside the page. Needs the dev extra
(playwright) and a Chromium (tests/tools/ensure_chromium.sh).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from genart.errors import ConfigError
from genart.images import encode
from genart.views.gallery_page import render

VIEWPORT = {"width": 1280, "height": 900}
DISTINCT = 64
TRAITS = ["Seed", "Class", "Model", "Background", "Dominant colour", "Brightness"]


def write_items(folder: Path, n: int) -> tuple[list[list], dict]:
    """n PNG files under folder/images/ and their page rows; returns (rows, rarity-like filter table)."""
    rng = np.random.default_rng(0)
    blobs = [encode(rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), "png") for _ in range(DISTINCT)]
    rows, table = [], {t: {} for t in TRAITS[1:]}
    for i in range(n):
        shard = i // 1000
        rel = f"images/{shard:05d}/{i:010d}.png"
        if i % 1000 == 0:
            (folder / f"images/{shard:05d}").mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(blobs[i % DISTINCT])
        values = [str(i * 7919), str(i % 10), "0123456789ab", ["white", "black"][i % 2], "grey", "mid"]
        for t, v in zip(TRAITS[1:], values[1:]):
            table[t].setdefault(v, {"count": 0, "share": 0.0})["count"] += 1
        rows.append([i, rel, values])
    return rows, table


def measure(browser, url: str) -> dict:
    """Timings (ms) and memory (MB) of one fresh load of `url`."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("+document.body.dataset.imagesLoaded >= 12", timeout=600_000)
    thumbs_ms = (time.perf_counter() - t0) * 1000
    fcp = page.evaluate(
        "(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime"
    )
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    # the page's own work (timed inside it): a filter change re-scans every item and renders a page; a keep
    # updates the store, the card and the counter
    filter_ms = page.evaluate(
        "() => { const s = document.getElementById('status'); s.value = 'undecided'; const t = performance.now();"
        " s.dispatchEvent(new Event('change')); return performance.now() - t; }"
    )
    keep_ms = page.evaluate(
        "() => { const t = performance.now(); document.dispatchEvent(new KeyboardEvent('keydown', {key: 'k'}));"
        " return performance.now() - t; }"
    )
    assert page.get_attribute("body", "data-kept") == "1"
    context.close()
    return {
        "fcp_ms": fcp,
        "thumbs_ms": thumbs_ms,
        "heap_mb": metrics["JSHeapUsedSize"] / 2**20,
        "nodes": int(metrics["Nodes"]),
        "filter_ms": filter_ms,
        "keep_ms": keep_ms,
    }


def bench_gallery(counts=(1000, 100_000), repeats: int = 3, chromium: str | None = None) -> list[dict]:
    """One row per count: page MB, render s (Python), and the medians of `repeats` fresh loads: fcp ms,
    first thumbnails ms, JS heap MB, DOM nodes, filter ms, keep ms. Raises ConfigError when Playwright or
    Chromium is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError("genart bench gallery needs playwright: pip install -e '.[dev]'") from None
    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise ConfigError("genart bench gallery needs Chromium: run tests/tools/ensure_chromium.sh")
    out = []
    with tempfile.TemporaryDirectory(prefix="genart-bench-gallery-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            warm = Path(tmp) / "warm"
            warm.mkdir()
            (warm / "index.html").write_text(
                render("warm", "", {"output": "", "job_id": "w"}, [], [], {}, "")
            )
            browser.new_page().goto((warm / "index.html").as_uri())  # a cold browser's first page is slower
            for n in counts:
                folder = Path(tmp) / str(n)
                folder.mkdir()
                rows, table = write_items(folder, n)
                t0 = time.perf_counter()
                html = render(
                    "bench", "", {"output": str(folder), "job_id": "bench"}, TRAITS, rows, table, ""
                )
                render_s = time.perf_counter() - t0
                (folder / "index.html").write_text(html)
                row = {"items": n, "page_mb": len(html.encode()) / 2**20, "render_s": render_s}
                runs = [measure(browser, (folder / "index.html").as_uri()) for _ in range(repeats)]
                row.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
                out.append(row)
                shutil.rmtree(folder)
        finally:
            browser.close()
    return out


def format_report(rows: list[dict]) -> list[tuple]:
    return [
        (
            f"{r['items']:,}", f"{r['page_mb']:.1f}", f"{r['render_s']:.2f}", f"{r['fcp_ms']:.0f}",
            f"{r['thumbs_ms']:.0f}", f"{r['heap_mb']:.1f}", f"{r['nodes']:,}", f"{r['filter_ms']:.0f}",
            f"{r['keep_ms']:.0f}",
        )
        for r in rows
    ]  # fmt: skip


HEADER = (
    "items", "page MB", "render s", "first paint ms", "first thumbs ms", "JS heap MB", "DOM nodes",
    "filter ms", "keep ms",
)  # fmt: skip
