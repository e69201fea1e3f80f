"""`genart bench memory`: the driver's peak memory does not grow with count, and resume is one listing.

1. Driver peak RSS (psutil, sampled every 20 ms in a thread) of a real generate() on a local Ray with a tiny
   bundle, for each count, each in a fresh Python process so one run's heap does not carry into the next.
2. Resume on a simulated output with N committed shards: N empty metadata/part-NNNNN.parquet files; the
   time of the runner's scan and how many listings and opens it made.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger(__name__)

DRIVER = """
import json, sys
from genart.benchmarks_memory import driver_peak
print("RESULT " + json.dumps(driver_peak(int(sys.argv[1]), sys.argv[2], sys.argv[3])))
"""


def _tiny_bundle(uri: str) -> None:
    """A randomly initialised 32x32 grayscale conditional DCGAN (g_width 8): generation is cheap, so the
    driver's bookkeeping, not the model, is what grows with count if anything does."""
    from genart.bundle import save_untrained_bundle

    save_untrained_bundle(uri)


def driver_peak(count: int, bundle: str, out: str, shard_size: int = 1000) -> dict:
    """Run generate() in this process (it starts a 2-CPU local Ray) and sample this process's RSS."""
    import psutil

    from genart.config.generate import GenerateConfig
    from genart.generation.runner import generate

    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.02)

    cfg = GenerateConfig(
        kind="generate",
        model=bundle,
        output=out,
        count=count,
        replicas=2,
        shard_size=shard_size,
        batch_size=250,
        layout="parquet",  # one object per shard: the driver is measured, not the local disk
    )
    base = proc.memory_info().rss
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = generate(cfg, progress=False)
    stop.set()
    sampler.join()
    return {
        "count": count,
        "rss_before_mb": base / 2**20,
        "peak_rss_mb": peak[0] / 2**20,
        "images_per_s": summary["images_per_s"],
        "seconds": summary["seconds"],
    }


def bench_driver_memory(counts: tuple[int, ...] = (10_000, 100_000)) -> list[dict]:
    """Peak driver RSS per count, each in a fresh process; prints the growth from the first to the last."""
    results = []
    with tempfile.TemporaryDirectory(prefix="genart-mem-") as tmp:
        bundle = f"{tmp}/bundle"
        _tiny_bundle(bundle)
        for count in counts:
            res = subprocess.run(
                [sys.executable, "-c", DRIVER, str(count), bundle, f"{tmp}/out-{count}"],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
            )
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
            if res.returncode or not line:
                raise RuntimeError(f"driver run for count {count} failed:\n{res.stderr[-3000:]}")
            results.append(json.loads(line[-1].removeprefix("RESULT ")))
    return results


class _CountingFS(LocalFileSystem):
    """The local filesystem, counting listings and opens (what resume costs on an object store)."""

    cachable = False

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = {"ls": 0, "open": 0, "cat": 0}

    def ls(self, path, detail=False, **kwargs):
        self.calls["ls"] += 1
        return super().ls(path, detail=detail, **kwargs)

    def _open(self, path, mode="rb", **kwargs):
        self.calls["open"] += 1
        return super()._open(path, mode=mode, **kwargs)

    def cat_file(self, path, start=None, end=None, **kwargs):
        self.calls["cat"] += 1
        return super().cat_file(path, start=start, end=end, **kwargs)


def bench_resume_listing(shards: int = 100_000) -> dict:
    """Time the runner's resume scan of an output with `shards` committed (empty) metadata parts."""
    from genart.config.generate import ClassesConfig
    from genart.generation.plan import Plan
    from genart.storage import layout
    from genart.storage.writer import scan_metadata

    with tempfile.TemporaryDirectory(prefix="genart-resume-") as tmp:
        meta = os.path.join(tmp, layout.METADATA_DIR)
        os.makedirs(meta)
        t0 = time.perf_counter()
        for k in range(shards):
            open(os.path.join(meta, layout.metadata_name(k)), "wb").close()
        made = time.perf_counter() - t0
        fs = _CountingFS()
        t0 = time.perf_counter()
        committed, stale = scan_metadata(fs, tmp)
        plan = Plan(shards * 10 + 5, 10, 0, ClassesConfig(), 0)  # one shard left to do
        pending = [spec.shard for spec in plan.pending(committed)]
        seconds = time.perf_counter() - t0
    assert len(committed) == shards and not stale and pending == [shards]
    return {"shards": shards, "scan_s": seconds, "create_s": made, **fs.calls}


def run(counts: tuple[int, ...] = (10_000, 100_000), shards: int = 100_000) -> dict:
    """Both measurements, as the table `genart bench memory` prints."""
    mem = bench_driver_memory(counts)
    growth = mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"] - 1
    return {"driver": mem, "growth": growth, "resume": bench_resume_listing(shards)}


def format_report(result: dict) -> str:
    lines = [
        "| images | driver RSS before (MB) | driver peak RSS (MB) | images/s | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in result["driver"]:
        lines.append(
            f"| {r['count']:,} | {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['images_per_s']:.0f} "
            f"| {r['seconds']:.1f} |"
        )
    lines.append(
        f"\npeak RSS growth {result['driver'][0]['count']:,} -> {result['driver'][-1]['count']:,}: "
        f"{100 * result['growth']:+.1f}% (goal: at most +15%)"
    )
    r = result["resume"]
    lines.append(
        f"resume scan of {r['shards']:,} committed shards: {r['scan_s']:.3f}s "
        f"({r['ls']} listing(s), {r['open'] + r['cat']} file opens)"
    )
    return "\n".join(lines)
