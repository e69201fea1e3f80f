"""The shard scheduler: pending shards -> GeneratorReplica actors -> committed shards, with the near-duplicate
index actor beside them. Imports ray.

Per-shard attempt policy (the upper of genart's two retry levels; storage writes are retried below it, in
`storage/retry.py`): a shard whose replica died (or was killed as hung after shard_timeout_s without a
commit) is re-queued on a replacement replica, up to `max_retries` times, and the job stops once replicas die
`replicas x (max_retries + 1)` times without a commit in between. A shard task that raised is not retried:
the job stops with JobFailed quoting the task's error. Committed shards are kept either way.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Iterator

import numpy as np

from genart.config.generate import GenerateConfig
from genart.cpu_path import cpu_path_of
from genart.errors import GenartError, JobFailed
from genart.filters.dedupe import HashIndex
from genart.generation.ledger import ByteLedger
from genart.generation.plan import Plan, ShardSpec
from genart.generation.records import ShardResult, Tally
from genart.storage import layout
from genart.storage.fs import redact
from genart.storage.output import Output

log = logging.getLogger(__name__)


def error_cause(exc: BaseException) -> str:
    """The most telling line of a Ray error: the task's own exception where Ray kept it, else the innermost
    `SomeError: message` line, else its first line (at most 500 characters)."""
    inner = getattr(exc, "cause", None)
    if isinstance(inner, GenartError):
        return f"{type(inner).__name__}: {inner}"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        head = ln.split(":", 1)[0]
        if ": " in ln and (head.endswith("Error") or head.endswith("Exception")) and " " not in head:
            return ln[:500]
    return (lines[0] if lines else type(exc).__name__)[:500]


def shard_failed(shard: int, cause: str) -> JobFailed:
    """The job's error when shard `shard` raised `cause` (a shard task's error is not retried)."""
    if "re-run" not in cause:
        cause += "; committed shards are kept, re-run the same command to resume"
    return JobFailed(f"shard {shard} failed: {cause}")


def remote_replica(cfg: GenerateConfig):
    """The one place GeneratorReplica becomes an actor. The driver replaces dead replicas itself
    (bounded by max_retries per shard), so Ray neither restarts actors nor retries their tasks."""
    import ray

    # here, not at import: torch loads only in a driver that starts replicas
    from genart.generation.replica import GeneratorReplica

    return ray.remote(
        num_cpus=cfg.cpus_per_replica, num_gpus=cfg.gpus_per_replica, max_restarts=0, max_task_retries=0
    )(GeneratorReplica)


class ColdPool:
    """The default replicas: actors started for this job (in its own local Ray, or a joined cluster) and
    killed after it. `generation/warm.py`'s WarmPool is the same interface over `genart up`'s warm actors."""

    def __init__(self, cfg: GenerateConfig, job: dict, claim=None):
        self.actor_cls = remote_replica(cfg)
        self.args = (cfg, job["job_id"], job["model_id"], claim, None, cpu_path_of(job))

    def start_all(self, n: int) -> list:
        return [self.start(i) for i in range(n)]

    def start(self, slot: int):
        return self.actor_cls.remote(*self.args)

    def submit(self, actor, spec: ShardSpec):
        return actor.run_shard.remote(spec)

    def release(self, actors: list, inflight: list) -> None:
        import ray

        for actor in actors:
            ray.kill(actor)


class RemoteClaim:
    """claim(ids, hashes) -> [bool] through the job's HashIndex actor: what replicas call per batch."""

    def __init__(self, index, timeout_s: float):
        self.index, self.timeout_s = index, timeout_s

    def __call__(self, ids, hashes, attempt: int = 0) -> list[bool]:
        import ray

        return ray.get(self.index.claim.remote(ids, hashes, attempt), timeout=self.timeout_s)


def committed_hashes(out: Output, committed: set[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, phash) int64 arrays of each committed shard's metadata part, one read of two columns each; a
    part that cannot be read is logged and dropped from `committed` (its shard is redone)."""
    import pyarrow.parquet as pq

    for k in sorted(committed):
        path = out.path(layout.metadata_path(k))
        try:
            with out.fs.open(path, "rb") as f:
                t = pq.read_table(f, columns=["id", "phash"])
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid (a ValueError) or OSError
            log.warning("%s is unreadable (%s: %s); its shard %d is redone", path, type(exc).__name__, exc, k)
            committed.discard(k)
            continue
        yield t.column("id").to_numpy(), t.column("phash").to_numpy()


def shard_progress(cfg: GenerateConfig, plan: Plan, committed: set[int], progress: bool):
    """The job's tqdm bar (images), starting at what earlier runs committed."""
    from tqdm.auto import tqdm

    prior_images = sum(plan.shard_len(k) for k in committed)
    return tqdm(
        total=cfg.count,
        initial=prior_images,
        unit="img",
        desc="generate",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def start_index(cfg: GenerateConfig, out: Output, committed: set[int]) -> RemoteClaim | None:
    """The near-duplicate index as one Ray actor (claims from every replica go through it one batch at a
    time), loaded with the hashes of the shards already committed. None when dedupe is off. A committed
    part that cannot be read is dropped from `committed` (its shard is redone). Raises JobFailed when
    loading takes over 600 s plus a second per committed shard."""
    if cfg.dedupe.max_distance is None:
        return None
    import ray

    index = ray.remote(num_cpus=0, max_restarts=0)(HashIndex).remote(cfg.dedupe.max_distance, cfg.count)
    loads = [index.add_many.remote(ids, hashes) for ids, hashes in committed_hashes(out, committed)]
    if loads:
        from ray.exceptions import GetTimeoutError

        wait_s = 600 + len(loads)  # a second per committed shard on top of a fixed bound
        try:
            n = ray.get(loads, timeout=wait_s)[-1]
        except GetTimeoutError:
            ray.kill(index)
            raise JobFailed(
                f"loading the near-duplicate index ({len(committed)} committed shards) took over {wait_s}s; "
                "re-run to try again"
            ) from None
        log.info("near-duplicate index: %d hashes of %d committed shards", n, len(committed))
    return RemoteClaim(index, cfg.shard_timeout_s)


class ShardScheduler:
    """Feeds shards to replicas with a bounded number in flight; replaces replicas that die."""

    def __init__(self, cfg: GenerateConfig, plan: Plan, committed: set[int], bar, ledger, pool):
        import ray

        self.ledger = ledger
        self.shards_total, self.shards_before = plan.num_shards, len(committed)
        self.ray, self.cfg, self.bar = ray, cfg, bar
        self.todo = plan.pending(committed)
        self.retry: deque[ShardSpec] = deque()
        self.pool = pool
        self.slots = pool.start_all(cfg.replicas)
        self.load = [0] * cfg.replicas
        self.progress_at = [time.monotonic()] * cfg.replicas  # last commit (or start) per replica slot
        self.killed_as_hung: set = set()  # actor handles killed for making no progress
        self.inflight: dict = {}  # ObjectRef -> (spec, slot, actor handle)
        self.failures: dict[int, int] = {}  # shard -> times its replica died under it
        self.deaths_since_progress = 0
        self.done = Tally()

    def _next(self) -> ShardSpec | None:
        if self.retry:
            return self.retry.popleft()
        return next(self.todo, None)

    def _fill(self) -> None:
        while True:
            slot = min(range(len(self.slots)), key=self.load.__getitem__)
            if self.load[slot] >= self.cfg.max_in_flight:
                return
            spec = self._next()
            if spec is None:
                return
            actor = self.slots[slot]
            self.inflight[self.pool.submit(actor, spec)] = (spec, slot, actor)
            self.load[slot] += 1

    def _wait_s(self) -> float:
        """How long ray.wait may block before some busy replica passes its shard_timeout_s."""
        now, limit = time.monotonic(), self.cfg.shard_timeout_s
        busy = [self.progress_at[i] + limit - now for i in range(len(self.slots)) if self.load[i] > 0]
        return max(0.05, min(busy, default=limit))

    def _kill_hung(self) -> None:
        """Kill replicas that committed nothing for shard_timeout_s: their shards then fail as RayActorError
        and go through the same replace-and-retry path as a replica that died."""
        now = time.monotonic()
        for i, actor in enumerate(self.slots):
            if (
                self.load[i] > 0
                and now - self.progress_at[i] > self.cfg.shard_timeout_s
                and actor not in self.killed_as_hung
            ):
                log.warning(
                    "replica %d committed nothing for %.0fs (shard_timeout_s); killing it as hung",
                    i,
                    now - self.progress_at[i],
                )
                self.killed_as_hung.add(actor)
                self.ray.kill(actor, no_restart=True)

    def _replica_died(self, spec: ShardSpec, slot: int, actor, exc: BaseException) -> None:
        cause = error_cause(exc)
        if actor in self.killed_as_hung:
            cause = f"killed as hung: no shard committed within shard_timeout_s={self.cfg.shard_timeout_s:g}"
        if self.slots[slot] is actor:  # first failure seen from this actor: replace it once
            self.deaths_since_progress += 1
            log.warning("replica %d died (%s); starting a replacement", slot, cause)
            self.slots[slot] = self.pool.start(slot)
            self.progress_at[slot] = time.monotonic()
            self.load[slot] = 0  # what is still in flight on the dead actor fails and is resubmitted
        n = self.failures[spec.shard] = self.failures.get(spec.shard, 0) + 1
        limit = self.cfg.replicas * (self.cfg.max_retries + 1)
        if n > self.cfg.max_retries or self.deaths_since_progress > limit:
            raise JobFailed(
                f"shard {spec.shard}: its replica died {n} time(s) (max_retries={self.cfg.max_retries}; "
                f"{self.deaths_since_progress} replica deaths since the last committed shard). "
                f"Last error: {cause}. "
                f"Check that the bundle {redact(self.cfg.model)} loads on the Ray workers and that they have "
                "enough memory; committed shards are kept, re-run the same command to resume"
            ) from exc
        log.warning("shard %d: resubmitting (attempt %d of %d)", spec.shard, n + 1, self.cfg.max_retries + 1)
        self.retry.append(dataclasses.replace(spec, attempt=n))

    def _committed(self, res: ShardResult, t0: float) -> None:
        self.deaths_since_progress = 0
        self.failures.pop(res.shard, None)
        self.done.add(res, t0, self.ledger, self.bar, self.shards_before, self.shards_total)

    def run(self, t0: float) -> Tally:
        """Run until every pending shard is committed; returns what this run committed. Raises JobFailed
        (a shard task raised, or replicas died past the limits above); kills its replicas either way."""
        from ray.exceptions import RayActorError, RayTaskError

        try:
            self._fill()
            while self.inflight:
                ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=self._wait_s())
                if not ready:
                    self._kill_hung()
                for ref in ready:
                    spec, slot, actor = self.inflight.pop(ref)
                    if self.slots[slot] is actor:
                        self.load[slot] -= 1
                        self.progress_at[slot] = time.monotonic()
                    try:
                        res = self.ray.get(ref)
                    except RayActorError as exc:
                        self._replica_died(spec, slot, actor, exc)
                    except RayTaskError as exc:
                        raise shard_failed(spec.shard, error_cause(exc)) from exc
                    else:
                        self._committed(res, t0)
                self._fill()
        finally:
            self.ledger.save(force=True)
            self.pool.release(self.slots, list(self.inflight))
        return self.done


def run_shards(
    cfg: GenerateConfig,
    plan: Plan,
    out: Output,
    job: dict,
    committed: set[int],
    ledger: ByteLedger,
    *,
    progress: bool,
    t0: float,
    pool_cls=ColdPool,
) -> Tally:
    """Generate the shards not yet committed, inside the caller's Ray session, with a progress bar.

    Raises JobFailed when a shard task raises, when its replicas die more than max_retries times under it,
    or when loading the near-duplicate index times out; StorageError propagates from the commit path.
    `pool_cls(cfg, job, claim)`: where the replicas come from (ColdPool, or generation/warm.py's WarmPool)."""
    log.info(
        "job %s: %d shards, %d already committed, output %s",
        job["job_id"],
        plan.num_shards,
        len(committed),
        out.name,
    )
    with shard_progress(cfg, plan, committed, progress) as bar:
        claim = start_index(cfg, out, committed)
        try:
            return ShardScheduler(cfg, plan, committed, bar, ledger, pool_cls(cfg, job, claim)).run(t0)
        finally:
            if claim is not None:  # a joined cluster outlives the job: do not leave the index there
                import ray

                ray.kill(claim.index)
