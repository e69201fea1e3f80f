"""`genart bench train`: training samples/s in one process without Ray against Ray Train with 1 and 2 workers
of the same total CPU (ratios within one run; the machine is shared and noisy)."""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import torch

from genart.bench.common import TRAIN_CONFIG, print_table
from genart.config import load_config
from genart.training.loop import worker_threads


def _plain_train(cfg, threads: int) -> float:
    """Steady-state samples/s of the same loop in this process, without Ray."""
    from genart.data.digits import load_digits_arrays
    from genart.training.loop import build_state, cached_batches, run_training

    torch.set_num_threads(threads)
    imgs, labels = load_digits_arrays(cfg.model.image_size)
    state = build_state(cfg, torch.device("cpu"))
    rates: list[float] = []
    batches = cached_batches(iter([{"image": imgs, "label": labels}]), cfg.train.batch_size, 0, 0)
    run_training(state, batches, torch.device("cpu"), 1, lambda s, m, c: rates.append(m["samples_per_s"]))
    return float(np.median(rates[1:] or rates))


def _ray_train(cfg, workers: int, out: str) -> tuple[float, float]:
    from genart.training.trainer import train

    cfg = cfg.model_copy(deep=True)
    cfg.output, cfg.scaling.num_workers = out, workers
    t0 = time.perf_counter()
    res = train(cfg)
    rates = [m["samples_per_s"] for m in res.metrics]
    return float(np.median(rates[1:] or rates)), time.perf_counter() - t0


def bench_train(steps: int = 300, quality: bool = True) -> dict:
    import ray

    from genart.ray_session import ray_session

    tmp = tempfile.mkdtemp(prefix="genart-bench-")
    base = load_config(
        TRAIN_CONFIG,
        [f"train.steps={steps}", f"train.log_every={max(steps // 6, 1)}", f"train.checkpoint_every={steps}"],
    )
    results: dict = {}
    results["plain_1thread"] = _plain_train(base, 1)
    results["plain_2threads"] = _plain_train(base, 2)
    with ray_session(None, num_cpus=2):
        one_thread = base.model_copy(deep=True)
        one_thread.scaling.threads_per_worker = (
            1  # what a 0.5-CPU worker ran with before its threads were set
        )
        results["ray_1worker_1thread"], _ = _ray_train(one_thread, 1, f"{tmp}/w1t1")
        results["ray_1worker"], _ = _ray_train(base, 1, f"{tmp}/w1")
        results["ray_2workers"], _ = _ray_train(base, 2, f"{tmp}/w2")
        if quality:
            full = load_config(TRAIN_CONFIG, ["output=out/cgan-digits"])
            shutil.rmtree("out/cgan-digits", ignore_errors=True)
            t0 = time.perf_counter()
            from genart.training.trainer import train

            train(full)
            results["shipped_config_seconds"] = time.perf_counter() - t0
    assert not ray.is_initialized()
    rows = [
        ("plain PyTorch loop, 1 thread", f"{results['plain_1thread']:.0f}", "1.00"),
        (
            "plain PyTorch loop, 2 threads",
            f"{results['plain_2threads']:.0f}",
            f"{results['plain_2threads'] / results['plain_1thread']:.2f}",
        ),
        (
            "Ray Train, 1 worker (0.5 CPU), 1 thread",
            f"{results['ray_1worker_1thread']:.0f}",
            f"{results['ray_1worker_1thread'] / results['plain_1thread']:.2f}",
        ),
        (
            f"Ray Train, 1 worker (0.5 CPU), {worker_threads(1)} threads (default)",
            f"{results['ray_1worker']:.0f}",
            f"{results['ray_1worker'] / results['plain_1thread']:.2f}",
        ),
        (
            "Ray Train, 2 workers (DDP, gloo)",
            f"{results['ray_2workers']:.0f}",
            f"{results['ray_2workers'] / results['plain_1thread']:.2f}",
        ),
    ]
    print_table(
        f"training throughput, {TRAIN_CONFIG.name}, batch {base.train.batch_size}/worker, {steps} steps "
        "(steady state, median of windows)",
        rows,
        ("setup", "samples/s", "vs plain 1 thread"),
    )
    overhead = 1 - results["ray_1worker_1thread"] / results["plain_1thread"]
    print(f"  Ray Train overhead vs the same loop in one process (1 worker vs 1 thread): {overhead:+.1%}")  # noqa: T201
    speedup = results["ray_1worker"] / results["ray_1worker_1thread"]
    print(f"  one worker with the default threads vs 1 thread: {speedup:.2f}x")  # noqa: T201
    if quality:
        from genart.views.evaluate import evaluate

        report = evaluate("out/cgan-digits/model", samples=2000)
        results["shipped_accuracy"] = report["accuracy"]
        print(
            f"\n  shipped {TRAIN_CONFIG.name}: trained in {results['shipped_config_seconds']:.0f}s; "  # noqa: T201
            f"SVC accuracy on 2000 class-conditional samples: {report['accuracy']:.3f}; "
            f"frechet {report['frechet_distance']:.2f}; diversity {report['diversity_ratio']:.2f}"
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return results
