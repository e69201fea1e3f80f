"""`make gpu-check` / `python -m genart.bench.gpu_check`: the GPU path end to end, in at most ~5 minutes.

1. trains a 64x64 class-conditional DCGAN on the built-in digits for a few hundred steps with bf16
   autocast (the training loop's CUDA path) and exports it as a bundle;
2. generates `--count` (default 200,000) 64x64 images with 1 and then 2 GeneratorReplicas sharing the GPU
   (one process each, as Ray actors with gpus_per_replica 1 and 0.5 would be), bf16 + channels_last,
   encoding on the node's cores, into a temporary output;
3. prints images/s, GPU utilisation (pynvml, else nvidia-smi) and where time goes: latents (host), launch
   (host), generate (GPU: forward + quantize), copy (D2H not hidden behind generation), wait (host blocked on
   the GPU), encode and write (thread-seconds in the encode pool), plus the encode-bound limit
   `per-core encode rate x cores`.

Exit status: 0 = ran; 3 = no CUDA GPU visible (nothing is run: the message says why); 1 = it failed.
No Ray: replicas are plain processes, so the figures are the engine's, not the scheduler's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

EXIT_NO_GPU = 3
DEADLINE_S = 300.0


def say(msg: str) -> None:
    print(msg, flush=True)  # noqa: T201 - a command-line script: printing is its output


def no_gpu_reason() -> str | None:
    """None when CUDA sees a GPU, else a one-line reason."""
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU-only build)"
        return f"no CUDA GPU visible to torch {torch.__version__} (its CUDA: {build})"
    return None


# ------------------------------------------------------------------------------------- training
def train_bundle(
    out: str, steps: int, device_name: str = "cuda", width: int = 64
) -> tuple[str, float, float]:
    """Train the 64x64 cGAN (bf16 autocast on cuda) and export it: (bundle URI, seconds, samples/s)."""
    import torch

    from genart.bundle import save_bundle
    from genart.config.train import TrainConfig
    from genart.data.digits import load_digits_arrays
    from genart.models.registry import generator_spec
    from genart.training.loop import build_state, cached_batches, run_training

    cfg = TrainConfig.model_validate(
        {
            "kind": "train",
            "output": out,
            "model": {
                "arch": "dcgan",
                "image_size": 64,
                "channels": 1,
                "num_classes": 10,
                "g_width": width,
                "d_width": width,
            },
            "train": {"steps": steps, "batch_size": 128, "log_every": max(steps // 5, 1)},
        }
    )
    device = torch.device(device_name)
    images, labels = load_digits_arrays(64)
    state = build_state(cfg, device)
    batches = cached_batches(iter([{"image": images, "label": labels}]), cfg.train.batch_size, 0, 0)
    rates: list[float] = []
    t0 = time.perf_counter()
    run_training(state, batches, device, 1, lambda s, m, c: rates.append(m["samples_per_s"]))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    uri = os.path.join(out, "model")
    training = {"steps": steps, "world_size": 1, "data": {"source": "digits"}, "precision": "bf16"}
    save_bundle(uri, state.exported, generator_spec(cfg.model), training)
    return uri, seconds, (rates[-1] if rates else 0.0)


# ----------------------------------------------------------------------------------- generation
def _replica_main(cfg, job_id: str, model_id: str, shards: list[int], barrier, results) -> None:
    """One replica process: warm up, wait for the others, run its shards, report its stage times."""
    import numpy as np

    from genart.generation import replica as replica_mod
    from genart.generation.plan import Plan

    try:
        rep = replica_mod.GeneratorReplica(cfg, job_id, model_id)
        plan = Plan.from_config(cfg, rep.bundle.num_classes)
        first = plan.shard(shards[0])
        cls = None if first.class_ids is None else np.array(first.class_ids[: cfg.batch_size])
        rep.bundle.generate(first.seeds[: cfg.batch_size], cls)  # cuDNN autotune / compile, not timed
        rep.times.reset()
        replica_mod.encode = rep.times.timed("encode", replica_mod.encode)  # split encode from write
        barrier.wait()
        t0 = time.perf_counter()
        n = sum(rep.run_shard(plan.shard(s)).n for s in shards)
        results.put({"n": n, "seconds": time.perf_counter() - t0, "times": rep.times.snapshot()})
    except BaseException as exc:  # the parent reports it; a broken barrier releases the others
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


class UtilSampler(threading.Thread):
    """GPU utilisation (%) every 0.2 s: pynvml when installed, else `nvidia-smi`, else nothing."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.source = "none"
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read, self.source = lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu, "pynvml"
        except Exception:  # noqa: BLE001 - pynvml absent or NVML unusable: try nvidia-smi
            if shutil.which("nvidia-smi"):
                self._read, self.source = self._smi, "nvidia-smi"
            else:
                self._read = None

    @staticmethod
    def _smi() -> float:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return float(out.stdout.strip().splitlines()[0])

    def run(self) -> None:
        while self._read is not None and not self._stop.wait(0.2):
            try:
                self.samples.append(float(self._read()))
            except Exception:  # noqa: BLE001 - a failed read is a missing sample, not a failed check
                pass

    def stop(self) -> str:
        self._stop.set()
        if not self.samples:
            return f"n/a ({self.source})"
        s = sorted(self.samples)
        return f"mean {sum(s) / len(s):.0f}%, max {s[-1]:.0f}% ({len(s)} samples, {self.source})"


def run_generation(bundle: str, out: str, args, replicas: int, cores: int) -> dict:
    from genart.bundle import read_meta
    from genart.config.generate import GenerateConfig
    from genart.ids import num_shards

    cfg = GenerateConfig.model_validate(
        {
            "kind": "generate",
            "model": bundle,
            "output": out,
            "count": args.count,
            "seed": 0,
            "replicas": replicas,
            "shard_size": args.shard_size,
            "batch_size": args.batch_size,
            "cpus_per_replica": max(1, cores // replicas),
            "gpus_per_replica": 1.0 / replicas if args.device == "cuda" else 0.0,
            "layout": args.layout,
            "inference": {"precision": "bf16", "channels_last": True, "compile": args.compile},
        }
    )
    model_id = read_meta(bundle)["model_id"]
    n_shards = num_shards(args.count, args.shard_size)
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    barrier, results = ctx.Barrier(replicas + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=_replica_main,
            args=(cfg, "gpu-check", model_id, list(range(r, n_shards, replicas)), barrier, results),
        )
        for r in range(replicas)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=180)
    util = UtilSampler()
    util.start()
    t0 = time.perf_counter()
    got = [results.get(timeout=DEADLINE_S) for _ in procs]
    wall = time.perf_counter() - t0
    gpu = util.stop()
    for p in procs:
        p.join(timeout=30)
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        raise RuntimeError("; ".join(errors))
    times: dict[str, float] = {}
    for g in got:
        for k, v in g["times"].items():
            times[k] = times.get(k, 0.0) + v
    times["write"] = times.pop("encode_write", 0.0) - times.get("encode", 0.0)
    n = sum(g["n"] for g in got)
    return {"replicas": replicas, "n": n, "wall": wall, "rate": n / wall, "gpu": gpu, "times": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m genart.bench.gpu_check", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--count", type=int, default=200_000, help="images per generation run")
    ap.add_argument("--steps", type=int, default=300, help="bf16 training steps")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--width", type=int, default=64, help="g_width and d_width of the 64x64 model")
    ap.add_argument("--shard-size", type=int, default=20_000)
    ap.add_argument("--replicas", default="1,2", help="comma-separated replica counts sharing the GPU")
    ap.add_argument("--layout", default="parquet", choices=("files", "webdataset", "parquet"))
    ap.add_argument("--compile", action="store_true", help="torch.compile the generator")
    ap.add_argument("--keep", action="store_true", help="keep the temporary outputs")
    ap.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="cpu: test this script itself (small --count)",
    )
    args = ap.parse_args(argv)

    reason = no_gpu_reason() if args.device == "cuda" else None
    if reason:
        say(f"gpu-check: {reason}; nothing was run (exit {EXIT_NO_GPU}).")
        say("Run it on a machine with an NVIDIA GPU and a CUDA build of torch: make gpu-check")
        return EXIT_NO_GPU

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    start = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="genart-gpu-check-")
    try:
        name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU only (--device cpu)"
        say(f"gpu-check: {name}, torch {torch.__version__}, {cores} CPU cores")
        bundle, secs, rate = train_bundle(os.path.join(tmp, "train"), args.steps, args.device, args.width)
        say(
            f"train: 64x64 cGAN, {args.steps} steps on {args.device} in {secs:.1f} s ({rate:,.0f} samples/s at the end)"
        )
        stages = ("latents", "launch", "generate", "copy", "wait", "encode", "write")
        say(f"\n{'replicas':>8} {'images':>8} {'seconds':>8} {'images/s':>9}  GPU utilisation")
        rows = []
        for r in (int(x) for x in args.replicas.split(",")):
            if time.perf_counter() - start > DEADLINE_S * 0.8:
                say(f"skipping {r} replicas: the {DEADLINE_S:.0f} s budget is nearly spent")
                continue
            res = run_generation(bundle, os.path.join(tmp, f"gen-{r}"), args, r, cores)
            rows.append(res)
            say(f"{r:>8} {res['n']:>8,} {res['wall']:>8.1f} {res['rate']:>9,.0f}  {res['gpu']}")
        say("\nwhere time goes (seconds, summed over replicas; encode/write are thread-seconds):")
        say(f"{'replicas':>8} " + " ".join(f"{s:>9}" for s in stages))
        for res in rows:
            say(f"{res['replicas']:>8} " + " ".join(f"{res['times'].get(s, 0.0):>9.2f}" for s in stages))
        for res in rows:
            enc = res["times"].get("encode", 0.0)
            if enc > 0:
                per_core = res["n"] / enc
                say(
                    f"encode-bound limit ({res['replicas']} replicas): per-core encode rate {per_core:,.0f} "
                    f"images/s x {cores} cores = {per_core * cores:,.0f} images/s "
                    f"(achieved {res['rate'] / (per_core * cores):.0%})"
                )
        say(f"\ngpu-check: done in {time.perf_counter() - start:.0f} s")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
