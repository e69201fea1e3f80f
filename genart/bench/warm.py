"""`genart bench warm` (and `make bench`): interactive latency, whole processes side by side in one run.

Five measurements of whole-process wall time, each a fresh process as a user starts it: the plain
single-process loop (load the bundle, generate batches, PIL-save each image, one metadata table) for 200 and
2,000 images; `genart generate` of 200 images with `genart up` keeping the bundle warm; a cold `genart
generate` of 2,000 (GENART_WARM=0, as without `up`: a quick job runs in the process), and the same with its
own local Ray (in_process_below_s 0). Then where the warm floor goes:
the interpreter, the driver's imports (`python -X importtime`), and what is left (joining Ray, the job).
A benchmark, not a test: the machine is shared and noisy, so read the ratios within one run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from genart.bench.common import GENART, ROOT, bench_bundle, print_table, timed

# the plain loop as its own script: only what such a loop imports (torch, numpy, PIL, pyarrow)
PLAIN = """
import os, sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from genart.bundle import load_bundle
from genart.ids import item_seeds
from genart.images import encode
bundle_uri, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bundle = load_bundle(bundle_uri)
os.makedirs(out, exist_ok=True)
rows = []
for start in range(0, count, 256):
    ids = np.arange(start, min(start + 256, count))
    seeds = item_seeds(0, ids)
    for i, s, img in zip(ids, seeds, bundle.generate(seeds, ids % 10)):
        path = f"{out}/{i:010d}.png"
        with open(path, "wb") as f:
            f.write(encode(img, "png"))
        rows.append((int(i), int(s), path))
pq.write_table(pa.table({"id": [r[0] for r in rows], "seed": [r[1] for r in rows], "path": [r[2] for r in rows]}),
               f"{out}/metadata.parquet")
"""
RUNS = ("plain_small", "warm_small", "plain_large", "cold_large", "ray_large")
DRIVER_IMPORTS = "import genart.cli, genart.generation.runner, genart.generation.warm, ray"
CONFIG = ROOT / "configs" / "generate" / "digits.yaml"


def _generate(bundle: str, count: int, out: str) -> list[str]:
    return [GENART, "generate", str(CONFIG), "--set", f"model={bundle}", "--set", f"output={out}",
            "--set", f"count={count}"]  # fmt: skip


def _top_imports(env: dict, n: int = 8) -> list[tuple[str, float]]:
    """The warm driver's costliest packages: cumulative seconds of each package's own first import
    (python -X importtime), largest first."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", DRIVER_IMPORTS], env=env, capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    found: dict[str, float] = {}
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if "." not in name and not name.startswith("_"):  # a package itself, not its submodules
                found[name] = max(found.get(name, 0.0), int(parts[1]) / 1e6)
    found.pop("genart", None)  # the package face only; its stages count under what they import
    return sorted(found.items(), key=lambda kv: -kv[1])[:n]


def bench_warm(small: int = 200, large: int = 2000, rounds: int = 3) -> dict:
    """The five measurements, interleaved in `rounds` rounds (a busy machine then slows each about alike;
    medians reported), and the floor; print the table; write out/bench-warm.json. Returns the figures
    (seconds). Starts its own `genart up` with GENART_HOME in a temp dir and stops it after."""
    tmp = tempfile.mkdtemp(prefix="genart-bench-warm-")
    bundle = bench_bundle(tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GENART_WARM")}
    env["GENART_HOME"] = f"{tmp}/home"
    cold_env = {**env, "GENART_WARM": "0"}
    r: dict = {"bundle": bundle, "cores": os.cpu_count(), "small": small, "large": large, "rounds": rounds}
    runs: dict[str, list] = {k: [] for k in RUNS}
    summaries: dict = {}
    r["up"], _ = timed([GENART, "up", "--model", bundle], env, tmp)
    try:
        for k in range(rounds):
            plain = [sys.executable, "-c", PLAIN, bundle]
            runs["plain_small"].append(timed([*plain, str(small), f"{tmp}/p1-{k}"], env, tmp)[0])
            sec, out = timed(_generate(bundle, small, f"{tmp}/w-{k}"), env, tmp)
            runs["warm_small"].append(sec)
            summaries["warm_small"] = json.loads(out.strip().splitlines()[-1])
            runs["plain_large"].append(timed([*plain, str(large), f"{tmp}/p2-{k}"], env, tmp)[0])
            sec, out = timed(_generate(bundle, large, f"{tmp}/c-{k}"), cold_env, tmp)
            runs["cold_large"].append(sec)
            summaries["cold_large"] = json.loads(out.strip().splitlines()[-1])
            ray_cold = [*_generate(bundle, large, f"{tmp}/r-{k}"), "--set", "in_process_below_s=0"]
            sec, out = timed(ray_cold, cold_env, tmp)
            runs["ray_large"].append(sec)
            summaries["ray_large"] = json.loads(out.strip().splitlines()[-1])
    finally:
        timed([GENART, "down"], env, tmp)
    for name, values in runs.items():
        r[f"{name}_runs"] = [round(v, 3) for v in values]
        r[name] = sorted(values)[len(values) // 2]  # the median
    for name in ("warm_small", "cold_large", "ray_large"):
        r[f"{name}_summary"] = summaries[name]
    r["python"], _ = timed([sys.executable, "-c", "pass"], env, tmp)
    r["driver_imports"], _ = timed([sys.executable, "-c", DRIVER_IMPORTS], env, tmp)
    r["top_imports"] = _top_imports(env)
    _report(r)
    Path("out").mkdir(exist_ok=True)
    Path("out/bench-warm.json").write_text(json.dumps(r, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return r


def _report(r: dict) -> None:
    s, big = r["small"], r["large"]
    rows = [
        (f"plain loop, {s} images", r["plain_small"], 1.0, ""),
        (f"genart generate {s}, warm (genart up)",
         r["warm_small"], r["warm_small"] / r["plain_small"], "<= 1.00"),
        (f"plain loop, {big} images", r["plain_large"], 1.0, ""),
        (f"genart generate {big}, cold (no genart up: in this process)", r["cold_large"],
         r["cold_large"] / r["plain_large"], "<= 2.00"),
        (f"genart generate {big}, cold with its own local Ray (in_process_below_s 0)", r["ray_large"],
         r["ray_large"] / r["plain_large"], ""),
    ]  # fmt: skip
    print_table(
        f"interactive latency: whole-process wall time, bundle {r['bundle']}, {r['cores']} cores",
        [(name, f"{sec:.2f}", f"{ratio:.2f}", target) for name, sec, ratio, target in rows],
        ("process", f"seconds (median of {r['rounds']})", "vs plain", "target"),
    )
    warm = r["warm_small_summary"]
    rest = r["warm_small"] - r["driver_imports"]
    print(  # noqa: T201
        f"  rounds (s): {'; '.join(k + ' ' + ', '.join(f'{x:.2f}' for x in r[k + '_runs']) for k in RUNS)}\n"
        f"  genart up itself took {r['up']:.1f} s\n"
        f"  warm floor: interpreter {r['python']:.2f} s + driver imports {r['driver_imports'] - r['python']:.2f} s "
        f"(largest: {', '.join(f'{k} {v:.2f}' for k, v in r['top_imports'][:5])}) + joining Ray, the job and "
        f"leaving {rest:.2f} s (generate() itself: {warm['seconds']:.2f} s, first commit at {warm['first_commit_s']:.2f} s)\n"
        f"  cold {big}: generate() {r['cold_large_summary']['seconds']:.2f} s of {r['cold_large']:.2f} s, first "
        f"commit at {r['cold_large_summary']['first_commit_s']:.2f} s (torch import, bundle load, the estimate); "
        f"with its own Ray: generate() {r['ray_large_summary']['seconds']:.2f} s, first commit at "
        f"{r['ray_large_summary']['first_commit_s']:.2f} s (Ray start and replica start-up)"
    )
