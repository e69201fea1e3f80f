"""The fast generation path: device, precision, memory format, torch.compile, pinned copies, stage times.

Plain PyTorch, no Ray. `Engine.generate` returns what `models/sampling.sample` returns, uint8 (N, H, W, C); with
the default `InferenceConfig` on a CPU it runs the very same computation (identical pixels): blocks of 16 rows,
NHWC, on one thread (`models/sampling.forward_cpu`, or the job's recorded cpu_path), so its bytes never
depend on the batch. On CUDA (batched, so
within one level of the CPU reference but not promised bit-exact across batch sizes):

- the batch runs in a few chunks on the compute stream, each quantized to uint8 on the GPU (4x fewer
  bytes than fp32) and copied by a side stream into pinned host memory with `non_blocking=True`, so the
  copy of chunk k overlaps the generation of chunk k+1 and only the last chunk's copy is exposed;
- the pinned buffer is reused; each call returns a fresh array copied out of it (a host memcpy of a
  few microseconds per image, far below its PNG encode), because callers keep batches (the encode queue,
  the rejection-sampling filters, users of `genart.load_bundle(...).generate`);
- precision fp32 turns TF32 off (process-wide) so GPU pixels stay within 1 of the CPU reference.

`EncodePool` spreads each batch's encode-and-write over the replica's CPU cores, and `StageTimes` sums
seconds per stage (latents, generate, copy, wait, encode_write) for `genart.bench.gpu_check`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from genart.config.generate import InferenceConfig
from genart.cpu_path import CPU_PATH, check_cpu_path
from genart.models.sampling import forward_cpu, in_memory_format, inputs, memory_format_of, quantize

log = logging.getLogger(__name__)

COPY_CHUNKS = 4  # chunks per CUDA batch: copies of all but the last hide behind generation
MIN_CHUNK = 256  # smaller batches are not chunked (launch overhead would outweigh the overlap)
MIN_ENCODE_SLICE = 16  # EncodePool does not split a batch finer than this


class StageTimes:
    """Seconds per pipeline stage, summed over calls and threads (so thread-seconds for the encode pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def timed(self, name: str, fn: Callable) -> Callable:
        """`fn` wrapped so that each call's seconds count towards `name`."""

        def wrapper(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        return wrapper

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)

    def reset(self) -> None:
        with self._lock:
            self._seconds.clear()


def choose_device(gpus_per_replica: float) -> torch.device:
    """cuda when the replica was given a GPU share and CUDA sees one; else cpu (logged, not an error: a
    CPU-only cluster runs the same jobs more slowly)."""
    if gpus_per_replica > 0:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        log.warning(
            "gpus_per_replica is %s but CUDA sees no GPU here: generating on the CPU", gpus_per_replica
        )
    return torch.device("cpu")


def use_channels_last(option: bool | str, device: torch.device) -> bool:
    """`inference.channels_last` on CUDA: true/false, or auto = on (it helps cuDNN's tensor-core kernels).
    Never on a CPU: there the job's cpu_path fixes the memory format, since it changes the pixels."""
    return device.type == "cuda" and (option == "auto" or bool(option))


def autocast(device: torch.device, precision: str):
    """bf16 autocast on `device` for precision bf16 (CUDA or CPU); a no-op for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def prepare(
    generator: torch.nn.Module, device: torch.device, opts: InferenceConfig, cpu_path: str = CPU_PATH
) -> torch.nn.Module:
    """The generator in eval mode on `device`: on a CPU in the memory format of `cpu_path` (a copy when
    the given module is in another), on CUDA channels_last as `opts` asks; compiled when `opts` asks."""
    generator = generator.eval().to(device)
    if device.type == "cpu":
        generator = in_memory_format(generator, memory_format_of(cpu_path))
    elif use_channels_last(opts.channels_last, device):
        generator = generator.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: pick the fastest kernels once
        if opts.precision == "fp32":
            # TF32 would round conv inputs to 10-bit mantissas: keep fp32 within 1 of the CPU reference
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    if opts.compile:
        return torch.compile(generator)
    return generator


class Engine:
    """Runs one generator on one device with the inference options: seeds -> uint8 (N, H, W, C)."""

    def __init__(
        self,
        generator: torch.nn.Module,
        device: torch.device | str = "cpu",
        opts: InferenceConfig | None = None,
        times: StageTimes | None = None,
        cpu_path: str = CPU_PATH,
    ):
        """`cpu_path`: how a CPU computes items (genart.cpu_path.CPU_PATHS; a resumed job passes the
        one its _job.json records). Raises ValueError for an unknown one."""
        self.device = torch.device(device)
        self.opts = opts or InferenceConfig()
        self.cpu_path = check_cpu_path(cpu_path)
        self.generator = generator  # latent_dim / num_classes (a compiled module wraps it)
        self.model = prepare(generator, self.device, self.opts, cpu_path)
        self.times = times or StageTimes()
        self._cuda = self.device.type == "cuda"
        self._pinned: torch.Tensor | None = None
        self._copy_stream = torch.cuda.Stream(self.device) if self._cuda else None

    @torch.inference_mode()
    def generate(self, seeds, class_ids=None, truncation: float | None = None) -> np.ndarray:
        with self.times.stage("latents"):
            z, y = inputs(self.generator, seeds, class_ids, truncation, self.device)
        return self.run(z, y)

    @torch.inference_mode()
    def run(self, z: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
        """The generator on given inputs: z float32 (N, latent_dim), y int64 class ids (N,) or float32 class
        weights (N, num_classes) or None -> uint8 (N, H, W, C), the same computation as `generate`."""
        z = z.to(self.device)
        y = None if y is None else y.to(self.device)
        if self._cuda:
            return self._generate_cuda(z, y)
        with self.times.stage("generate"), autocast(self.device, self.opts.precision):
            images = forward_cpu(self.model, z, y, self.cpu_path)  # bytes independent of the batch
        with self.times.stage("copy"):
            return quantize(images).numpy()

    def _host(self, n: int, item_shape: tuple[int, ...]) -> torch.Tensor:
        """The pinned (n, H, W, C) uint8 staging buffer, grown when a batch is larger."""
        buf = self._pinned
        if buf is None or buf.shape[1:] != item_shape or len(buf) < n:
            buf = self._pinned = torch.empty((n, *item_shape), dtype=torch.uint8, pin_memory=True)
        return buf[:n]

    def _generate_cuda(self, z: torch.Tensor, y: torch.Tensor | None) -> np.ndarray:
        n = len(z)
        parts = min(COPY_CHUNKS, max(1, n // MIN_CHUNK))
        bounds = np.linspace(0, n, parts + 1).astype(int)
        compute, side = torch.cuda.current_stream(self.device), self._copy_stream
        start, generated, copied = (torch.cuda.Event(enable_timing=True) for _ in range(3))
        t_launch = time.perf_counter()
        start.record(compute)
        host = None
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            with autocast(self.device, self.opts.precision):
                images = self.model(z[lo:hi], None if y is None else y[lo:hi])
            chunk = quantize(images)
            if host is None:
                host = self._host(n, tuple(chunk.shape[1:]))
            ready = torch.cuda.Event()
            ready.record(compute)
            with torch.cuda.stream(side):
                side.wait_event(ready)
                host[lo:hi].copy_(chunk, non_blocking=True)
            chunk.record_stream(side)  # the allocator keeps chunk's memory until the side stream is done
        generated.record(compute)
        copied.record(side)
        t_wait = time.perf_counter()
        copied.synchronize()
        t_done = time.perf_counter()
        self.times.add("launch", t_wait - t_launch)  # host time to queue the kernels
        self.times.add("wait", t_done - t_wait)  # host blocked on the GPU
        self.times.add("generate", start.elapsed_time(generated) / 1000)  # GPU: forward + quantize
        self.times.add("copy", generated.elapsed_time(copied) / 1000)  # D2H not hidden behind compute
        return host.numpy().copy()


class EncodePool:
    """Spreads each batch over `workers` threads: `submit(fn, shared, *per_item)` runs
    `fn(shared, *slices)` on contiguous slices of the per-item values (a `Batch`, whose slice slices every
    field, or arrays; None stays None) and returns one Future for the whole batch (its exception is the
    first failing slice's). Rows may reach the shard in any order: ShardWrite sorts by id at commit.

    PIL's zlib/libwebp and torch release the GIL, so threads use several cores; the Python between
    images does not, which is why a GPU is better shared by several replicas (processes) than fed by
    one replica with many threads (`genart.bench.gpu_check` measures both).
    """

    def __init__(self, workers: int, times: StageTimes | None = None, stage: str = "encode_write"):
        """`workers` threads; 0 = none: `submit` runs the work in the caller's thread and returns a done
        Future (replicas that are themselves threads of one process, `generation/local.py`, gain nothing
        from more threads contending for the GIL)."""
        self.workers = max(0, int(workers))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="encode") if self.workers else None
        self._times, self._stage = times, stage

    def submit(self, fn: Callable, shared, *per_item) -> Future:
        if self._times is not None:
            fn = self._times.timed(self._stage, fn)
        if self._pool is None:
            done: Future = Future()
            try:
                done.set_result(fn(shared, *per_item))
            except Exception as exc:  # noqa: BLE001 - handed to the caller through the Future, as a thread would
                done.set_exception(exc)
            return done
        n = len(per_item[0])
        parts = min(self.workers, max(1, n // MIN_ENCODE_SLICE))
        if parts == 1:
            return self._pool.submit(fn, shared, *per_item)
        bounds = np.linspace(0, n, parts + 1).astype(int)
        futures = [
            self._pool.submit(fn, shared, *(_slice(a, lo, hi) for a in per_item))
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        return _all_of(futures)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait)


def _slice(a, lo: int, hi: int):
    return None if a is None else a[lo:hi]


def _all_of(futures: list[Future]) -> Future:
    batch: Future = Future()
    batch.set_running_or_notify_cancel()
    lock, left = threading.Lock(), [len(futures)]

    def one_done(_: Future) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            batch.set_exception(errors[0])
        else:
            batch.set_result([f.result() for f in futures])

    for f in futures:
        f.add_done_callback(one_done)
    return batch
