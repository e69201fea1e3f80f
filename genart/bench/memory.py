"""`genart bench memory`: the driver's peak memory does not grow with count, and resume is one listing.

1. Driver peak RSS (psutil, sampled every 20 ms in a thread) of a real generate() on a local Ray with a tiny
   bundle, for each count, each in a fresh Python process so one run's heap does not carry into the next.
2. Resume on a simulated output with N committed shards: N empty metadata/part-NNNNN.parquet files; the
   time of the runner's scan and how many listings and opens it made.
3. Replica RSS over a long job: every GeneratorReplica actor process's RSS (psutil, every 0.5 s) during a
   job of many shards, after the first 10% of shards vs at the end (a leak per shard shows as growth).
"""

from __future__ import annotations

import json
import logging
import math
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
from genart.bench.memory import driver_peak
print("RESULT " + json.dumps(driver_peak(int(sys.argv[1]), sys.argv[2], sys.argv[3])))
"""
REPLICAS = """
import json, sys
from genart.bench.memory import replica_rss
print("RESULT " + json.dumps(replica_rss(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])))
"""
REPLICA_TITLE = "ray::GeneratorReplica"  # Ray's process title for the actor's worker process


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
        in_process_below_s=0,  # Ray replicas: the driver's own memory, not a replica's
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
        "images_per_s": summary.images_per_s,
        "seconds": summary.seconds,
    }


def _fresh_process(script: str, *args: str, timeout_s: float = 1800) -> dict:
    """Run `script` (which prints `RESULT {json}`) in a fresh Python process; its parsed result."""
    res = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
    )
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not line:
        raise RuntimeError(f"run {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return json.loads(line[-1].removeprefix("RESULT "))


def bench_driver_memory(counts: tuple[int, ...] = (10_000, 100_000)) -> list[dict]:
    """Peak driver RSS per count, each in a fresh process; prints the growth from the first to the last."""
    results = []
    with tempfile.TemporaryDirectory(prefix="genart-mem-") as tmp:
        bundle = f"{tmp}/bundle"
        _tiny_bundle(bundle)
        for count in counts:
            results.append(_fresh_process(DRIVER, str(count), bundle, f"{tmp}/out-{count}"))
    return results


# ---------------------------------------------------------------- replica RSS over a long job
def _replica_rss(root) -> dict[int, int]:
    """{pid: RSS bytes} of the GeneratorReplica worker processes under `root` (this driver's own Ray)."""
    import psutil

    found = {}
    for child in root.children(recursive=True):
        try:
            if " ".join(child.cmdline()).startswith(REPLICA_TITLE):
                found[child.pid] = child.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # it ended between the listing and the read
    return found


def _committed_shards(out: str) -> int:
    from genart.storage import layout

    try:
        names = os.listdir(os.path.join(out, layout.METADATA_DIR))
    except FileNotFoundError:
        return 0
    return sum(1 for n in names if n.startswith("part-") and n.endswith(".parquet"))


def rss_growth(
    samples: list[tuple[float, int, dict[int, int]]], shards: int, warm_fraction: float = 0.1
) -> dict:
    """Replica RSS after the first `warm_fraction` of shards vs at the last sample that saw the replicas.

    `samples` are (seconds, committed shards, {pid: RSS bytes}). Growth compares the same processes only
    (a replica replaced mid-job has no pair); `replicas_seen` counts every pid sampled."""
    seen = [s for s in samples if s[2]]
    warm_at = max(1, math.ceil(warm_fraction * shards))
    warm = next((s for s in seen if s[1] >= warm_at), None)
    if warm is None:
        raise ValueError(f"no sample after {warm_at} committed shards; the job was too short to sample")
    end = seen[-1]
    replicas = []
    for pid in sorted(set(warm[2]) & set(end[2])):
        peak = max(s[2].get(pid, 0) for s in seen)
        replicas.append(
            {
                "pid": pid,
                "warm_mb": warm[2][pid] / 2**20,
                "end_mb": end[2][pid] / 2**20,
                "peak_mb": peak / 2**20,
                "growth": end[2][pid] / warm[2][pid] - 1,
            }
        )
    if not replicas:
        raise ValueError("no replica process lived from the warm sample to the end")
    return {
        "warm_shards": warm[1],
        "warm_s": warm[0],
        "end_shards": end[1],
        "end_s": end[0],
        "samples": len(seen),
        "replicas_seen": len({pid for s in seen for pid in s[2]}),
        "replicas": replicas,
        "growth": sum(r["end_mb"] for r in replicas) / sum(r["warm_mb"] for r in replicas) - 1,
    }


def replica_rss(shards: int, shard_size: int, bundle: str, out: str, interval_s: float = 0.5) -> dict:
    """Run generate() (2 replicas on a 2-CPU local Ray) in this process; sample each replica's RSS."""
    import psutil

    from genart.config.generate import GenerateConfig
    from genart.generation.runner import generate

    me, stop, samples = psutil.Process(), threading.Event(), []
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            committed = _committed_shards(out)  # before the RSS read: a shard counted is a shard done
            samples.append((time.perf_counter() - t0, committed, _replica_rss(me)))
            stop.wait(interval_s)

    cfg = GenerateConfig(
        kind="generate",
        model=bundle,
        output=out,
        count=shards * shard_size,
        replicas=2,
        shard_size=shard_size,
        batch_size=250,
        layout="parquet",  # one object per shard: the replicas are measured, not the local disk
        in_process_below_s=0,  # replica processes to sample
    )
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = generate(cfg, progress=False)
    stop.set()
    sampler.join(timeout=10)
    return {
        "shards": shards,
        "shard_size": shard_size,
        "images_per_s": summary.images_per_s,
        "seconds": summary.seconds,
        **rss_growth(samples, shards),
    }


def bench_replica_memory(shards: int = 200, shard_size: int = 500) -> dict:
    """Replica RSS growth over a `shards`-shard job of the tiny bundle, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="genart-mem-") as tmp:
        bundle = f"{tmp}/bundle"
        _tiny_bundle(bundle)
        return _fresh_process(REPLICAS, str(shards), str(shard_size), bundle, f"{tmp}/out")


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
    from genart.storage.commit import scan_metadata

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


def run(
    counts: tuple[int, ...] = (10_000, 100_000),
    shards: int = 100_000,
    long_job: tuple[int, int] | None = (200, 500),
) -> dict:
    """The measurements, as the tables `genart bench memory` prints; `long_job` = (shards, shard_size) of
    the replica RSS run (None skips it)."""
    mem = bench_driver_memory(counts)
    growth = mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"] - 1
    result = {"driver": mem, "growth": growth, "resume": bench_resume_listing(shards)}
    if long_job:
        result["replicas"] = bench_replica_memory(*long_job)
    return result


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
    if "replicas" in result:
        lines.append("\n" + format_replicas(result["replicas"]))
    return "\n".join(lines)


def format_replicas(r: dict) -> str:
    """The replica RSS table of one long job."""
    lines = [
        f"replica RSS over {r['shards']} shards x {r['shard_size']:,} images (tiny bundle, 2 replicas, "
        f"{r['images_per_s']:.0f} images/s, {r['seconds']:.0f}s; {r['samples']} samples every 0.5 s)",
        f"| replica pid | RSS after {r['warm_shards']} shards (MB) | RSS after {r['end_shards']} shards (MB) "
        "| peak (MB) | growth |",
        "|---|---|---|---|---|",
    ]
    for p in r["replicas"]:
        lines.append(
            f"| {p['pid']} | {p['warm_mb']:.0f} | {p['end_mb']:.0f} | {p['peak_mb']:.0f} | {100 * p['growth']:+.1f}% |"
        )
    lines.append(
        f"\nreplica RSS growth, shard {r['warm_shards']} -> {r['end_shards']}: {100 * r['growth']:+.1f}% "
        f"(both replicas summed; {r['replicas_seen']} replica process(es) seen)"
    )
    return "\n".join(lines)
