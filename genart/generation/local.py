"""Quick jobs in the driver: with no cluster to join, a job whose pending items take less than
`in_process_below_s` seconds runs through `replicas` GeneratorReplicas on threads of this process instead of
starting a local Ray (its start and two replica processes importing torch and loading the bundle cost about
8 s on a 2-core machine, more than tens of thousands of small images). No Ray here.

The replica, the shard commit, the ledger and the near-duplicate index are the ones Ray jobs use, so the
output is the same: the same files, bytes and metadata rows (job_id aside), resumable by either path.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from genart import warm_state
from genart.config.generate import GenerateConfig
from genart.cpu_path import cpu_path_of
from genart.errors import GenartError
from genart.filters.dedupe import HashIndex
from genart.generation.ledger import ByteLedger
from genart.generation.plan import Plan
from genart.generation.records import Tally
from genart.generation.scheduler import committed_hashes, shard_failed, shard_progress
from genart.images import encode
from genart.storage.output import Output

log = logging.getLogger(__name__)

ENCODE_WORKERS = 0  # encode threads per in-process replica unless inference.encode_workers says otherwise
PROBE_ITEMS = 32  # items timed (after one warm-up block) to estimate the job's seconds in this process


def may_run_here(cfg: GenerateConfig) -> bool:
    """Whether the job could run in this process: a CPU job, in_process_below_s > 0, and nothing to join (no
    address, no RAY_ADDRESS, no Ray already initialized here, no `genart up` running)."""
    if (
        cfg.in_process_below_s <= 0
        or cfg.gpus_per_replica > 0
        or cfg.address
        or os.environ.get("RAY_ADDRESS")
    ):
        return False
    ray = sys.modules.get("ray")  # a Ray the caller started (a notebook, a test, a Ray job) is used
    if ray is not None and ray.is_initialized():
        return False
    return warm_state.find_warm() is None


def seconds_per_item(replica, plan: Plan) -> float:
    """Seconds one item of the job takes in `replica` on this machine (generate + encode, after one warm-up
    block): the first PROBE_ITEMS ids of the plan, timed; nothing is written."""
    spec = plan.shard(0)
    n = min(PROBE_ITEMS, spec.n)
    args = (spec.ids[:n], spec.seeds[:n], None if spec.class_ids is None else np.array(spec.class_ids[:n]))
    replica.unfiltered_batch(*args)  # warm-up: oneDNN picks its kernels on the first call
    t0 = time.perf_counter()
    batch = replica.unfiltered_batch(*args)  # filters' redraws are not counted: an estimate
    for img in batch.images:
        encode(img, replica.cfg.image.format, replica.cfg.image.quality)
    return (time.perf_counter() - t0) / n


class InProcess:
    """`replicas` GeneratorReplicas in the driver (at most one per CPU), each run by its own thread on the
    one loaded bundle, ready to run a job's pending shards. Threads, not processes: torch and the file
    writes release the GIL, and no process has to import torch and load the bundle again."""

    def __init__(self, cfg: GenerateConfig, replicas: list, index: HashIndex | None, threads: int):
        self.cfg, self.replicas, self.index = cfg, replicas, index
        self._threads = threads  # the process's torch thread count before the replicas set theirs

    @classmethod
    def open_if_quick(
        cls, cfg: GenerateConfig, plan: Plan, job: dict, pending_items: int
    ) -> InProcess | None:
        """An InProcess for the job when it may run here and its `pending_items`, spread over its replicas,
        are estimated under in_process_below_s (timed on the first replica, before the others are made);
        else None (the caller starts Ray). Raises BundleError when the bundle does not load, as a replica
        would."""
        if not may_run_here(cfg) or pending_items == 0:
            return None
        import torch

        from genart.generation.replica import GeneratorReplica  # torch: only when a job runs here

        threads = torch.get_num_threads()
        index = HashIndex(cfg.dedupe.max_distance, cfg.count) if cfg.dedupe.max_distance is not None else None
        claim = None if index is None else _locked(index.claim)  # one claim at a time, as the index actor
        args = (cfg, job["job_id"], job["model_id"], claim)
        # each replica thread encodes its own batches (an encode thread beside each measured no faster here)
        kw = {"cpu_path": cpu_path_of(job), "encode_workers": cfg.inference.encode_workers or ENCODE_WORKERS}
        first = GeneratorReplica(*args, **kw)
        n = max(1, min(cfg.replicas, os.cpu_count() or 1))
        estimate = seconds_per_item(first, plan) * pending_items / n
        if estimate >= cfg.in_process_below_s:
            log.info(
                "%d items: about %.0f s on %d threads here (in_process_below_s %g): starting Ray",
                pending_items,
                estimate,
                n,
                cfg.in_process_below_s,
            )
            cls(cfg, [first], index, threads).close()
            return None
        log.info(
            "%d items: about %.1f s on %d threads: generating in this process, without Ray",
            pending_items,
            estimate,
            n,
        )
        others = [GeneratorReplica(*args, loaded=first.bundle, **kw) for _ in range(n - 1)]
        return cls(cfg, [first, *others], index, threads)

    def run(
        self, plan: Plan, out: Output, committed: set[int], ledger: ByteLedger, progress: bool, t0: float
    ) -> Tally:
        """Generate and commit every pending shard, each replica thread taking the next one in id order;
        returns this run's Tally. Raises JobFailed naming the shard and the error a replica raised
        (StorageError, BundleError) as a Ray job does, once every thread has stopped; committed shards
        are kept either way."""
        if self.index is not None:
            for ids, hashes in committed_hashes(out, committed):  # drops unreadable parts from committed
                self.index.add_many(ids, hashes)
        done, lock, failed = Tally(), threading.Lock(), []
        todo = plan.pending(committed)

        def work(replica) -> None:
            while not failed:
                with lock:
                    spec = next(todo, None)
                if spec is None:
                    return
                try:
                    res = replica.run_shard(spec)
                except GenartError as exc:  # the others stop after their current shard
                    failed.append(exc)
                    raise shard_failed(spec.shard, f"{type(exc).__name__}: {exc}") from exc
                except BaseException as exc:
                    failed.append(exc)
                    raise
                with lock:
                    done.add(res, t0, ledger, bar, len(committed), plan.num_shards)

        # one BLAS thread process-wide while the replica threads run: the digits scorer limits BLAS to one
        # thread per call (scores then never depend on the machine), and two threads entering and leaving
        # that limit at once would otherwise restore the other's count mid-score
        with shard_progress(self.cfg, plan, committed, progress) as bar, threadpool_limits(1):
            pool = ThreadPoolExecutor(len(self.replicas), thread_name_prefix="replica")
            try:
                for f in [pool.submit(work, r) for r in self.replicas]:
                    f.result()  # re-raises the first failure
            except BaseException as exc:  # a failure, or Ctrl-C: the threads stop after their current shard
                failed.append(exc)
                raise
            finally:
                pool.shutdown(wait=True)
                ledger.save(force=True)
        return done

    def close(self) -> None:
        """Stop the replicas' encode threads and give the process back its torch thread count."""
        import torch

        for replica in self.replicas:
            replica.close()
        torch.set_num_threads(self._threads)


def _locked(fn):
    lock = threading.Lock()

    def call(*args, **kwargs):
        with lock:
            return fn(*args, **kwargs)

    return call
