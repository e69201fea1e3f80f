"""The generation driver: plan -> GeneratorReplica actors -> committed shards -> _SUCCESS.

The only generation module that imports ray. Order of writes at the output: _job.json first, then
each shard's images and metadata/part-NNNNN.parquet (by the replicas), _SUCCESS last.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections import deque

import genart
from genart.bundle import read_meta
from genart.config.generate import GenerateConfig, resolve_class_names
from genart.errors import GenartError, JobFailed
from genart.filters.dedupe import HashIndex
from genart.filters.score import check_filter
from genart.generation.job import job_record, prepare_output, replace_output
from genart.generation.ledger import ByteLedger
from genart.generation.plan import Plan, ShardSpec
from genart.generation.replica import GeneratorReplica
from genart.market import write_collection
from genart.ray_session import ray_session, require_resources
from genart.storage import layout
from genart.storage.fs import check_writable, get_fs, join, redact
from genart.storage.hf import class_names_of
from genart.storage.writer import retry, scan_metadata, stale_tars

__all__ = ["generate", "job_record", "prepare_output"]  # job_record, prepare_output: genart.generation.job

log = logging.getLogger(__name__)


def _remote_replica(cfg: GenerateConfig):
    """The one place GeneratorReplica becomes an actor. The driver replaces dead replicas itself
    (bounded by max_retries per shard), so Ray neither restarts actors nor retries their tasks."""
    import ray

    return ray.remote(
        num_cpus=cfg.cpus_per_replica, num_gpus=cfg.gpus_per_replica, max_restarts=0, max_task_retries=0
    )(GeneratorReplica)


class _RemoteClaim:
    """claim(ids, hashes) -> [bool] through the job's HashIndex actor: what replicas call per batch."""

    def __init__(self, index, timeout_s: float):
        self.index, self.timeout_s = index, timeout_s

    def __call__(self, ids, hashes, attempt: int = 0) -> list[bool]:
        import ray

        return ray.get(self.index.claim.remote(ids, hashes, attempt), timeout=self.timeout_s)


def _start_index(cfg: GenerateConfig, fs, root: str, committed: set[int]):
    """The near-duplicate index as one Ray actor (claims from every replica go through it one batch at a
    time), loaded with the hashes of the shards already committed. None when dedupe is off. A committed
    part that cannot be read is dropped from `committed` (its shard is redone)."""
    if cfg.dedupe.max_distance is None:
        return None
    import pyarrow.parquet as pq
    import ray

    index = ray.remote(num_cpus=0, max_restarts=0)(HashIndex).remote(cfg.dedupe.max_distance, cfg.count)
    loads = []
    for k in sorted(committed):  # one read per committed shard, of two columns
        path = join(root, layout.metadata_path(k))
        try:
            with fs.open(path, "rb") as f:
                t = pq.read_table(f, columns=["id", "phash"])
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid (a ValueError) or OSError
            log.warning("%s is unreadable (%s: %s); its shard %d is redone", path, type(exc).__name__, exc, k)
            committed.discard(k)
            continue
        loads.append(index.add_many.remote(t.column("id").to_numpy(), t.column("phash").to_numpy()))
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
    return _RemoteClaim(index, cfg.shard_timeout_s)


def _cause(exc: BaseException) -> str:
    """The most telling line of a Ray error: the task's own exception where Ray kept it, else the innermost
    `SomeError: message` line, else its first line."""
    inner = getattr(exc, "cause", None)
    if isinstance(inner, GenartError):
        return f"{type(inner).__name__}: {inner}"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        head = ln.split(":", 1)[0]
        if ": " in ln and (head.endswith("Error") or head.endswith("Exception")) and " " not in head:
            return ln[:500]
    return (lines[0] if lines else type(exc).__name__)[:500]


class _Scheduler:
    """Feeds shards to replicas with a bounded number in flight; replaces replicas that die."""

    def __init__(
        self, cfg: GenerateConfig, plan: Plan, committed: set[int], job: dict, bar, ledger, claim=None
    ):
        import ray

        self.ledger = ledger
        self.shards_total, self.shards_before = plan.num_shards, len(committed)
        self.ray, self.cfg, self.bar = ray, cfg, bar
        self.todo = plan.pending(committed)
        self.retry: deque[ShardSpec] = deque()
        self.actor_cls = _remote_replica(cfg)
        self.args = (cfg, job["job_id"], job["model_id"], claim)
        self.slots = [self.actor_cls.remote(*self.args) for _ in range(cfg.replicas)]
        self.load = [0] * cfg.replicas
        self.progress_at = [time.monotonic()] * cfg.replicas  # last commit (or start) per replica slot
        self.killed_as_hung: set = set()  # actor handles killed for making no progress
        self.inflight: dict = {}  # ObjectRef -> (spec, slot, actor handle)
        self.failures: dict[int, int] = {}  # shard -> times its replica died under it
        self.deaths_since_progress = 0
        self.done = {"images": 0, "bytes": 0, "shards": 0, "first_commit_s": None}
        self.rejected = {"score": 0, "duplicate": 0}

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
            self.inflight[actor.run_shard.remote(spec)] = (spec, slot, actor)
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
        cause = _cause(exc)
        if actor in self.killed_as_hung:
            cause = f"killed as hung: no shard committed within shard_timeout_s={self.cfg.shard_timeout_s:g}"
        if self.slots[slot] is actor:  # first failure seen from this actor: replace it once
            self.deaths_since_progress += 1
            log.warning("replica %d died (%s); starting a replacement", slot, cause)
            self.slots[slot] = self.actor_cls.remote(*self.args)
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

    def _committed(self, res: dict, t0: float) -> None:
        self.deaths_since_progress = 0
        self.failures.pop(res["shard"], None)
        d = self.done
        d["images"] += res["n"]
        d["bytes"] += res["bytes"]
        d["shards"] += 1
        for k, v in res.get("rejected", {}).items():
            self.rejected[k] += v
        self.ledger.add(res["shard"], res["bytes"])
        self.ledger.save()
        if d["first_commit_s"] is None:
            d["first_commit_s"] = time.perf_counter() - t0
        self.bar.update(res["n"])
        self.bar.set_postfix_str(f"shards {self.shards_before + d['shards']}/{self.shards_total}")

    def run(self, t0: float) -> dict:
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
                        cause = _cause(exc)
                        if "re-run" not in cause:
                            cause += "; committed shards are kept, re-run the same command to resume"
                        raise JobFailed(f"shard {spec.shard} failed: {cause}") from exc
                    else:
                        self._committed(res, t0)
                self._fill()
        finally:
            self.ledger.save(force=True)
            for actor in self.slots:
                self.ray.kill(actor)
        return self.done


def _open_output(fs, root: str, cfg: GenerateConfig, plan: Plan) -> tuple[set[int], ByteLedger]:
    """The shards an earlier run committed (one listing; a shard whose part is unreadable is left out, to
    be redone) and the byte ledger accounting for them. Removes temp files of interrupted commits."""
    committed, stale = scan_metadata(fs, root)
    for path in stale + (stale_tars(fs, root) if cfg.layout == "webdataset" else []):
        try:  # temp files of commits interrupted by a killed replica or driver
            fs.rm_file(path)
        except FileNotFoundError:
            pass
    committed = {k for k in committed if k < plan.num_shards}
    ledger = ByteLedger(fs, root, plan.num_shards)
    committed -= ledger.resume(committed)  # one GET of _progress.json, not one footer per committed shard
    return committed, ledger


def _check_before_overwrite(cfg: GenerateConfig) -> None:
    """What --overwrite must know before it deletes anything: the bundle loads (weights match model.json)
    and the cluster can host the replicas (called inside the Ray session)."""
    from genart.bundle import load_bundle

    load_bundle(cfg.model, cfg.storage.options)
    require_resources("generate", cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica)


def _run(cfg, plan, fs, root, job, committed, ledger, progress: bool, t0: float):
    """Generate the shards not yet committed (inside a Ray session); returns (done, rejected)."""
    from tqdm.auto import tqdm

    log.info(
        "job %s: %d shards, %d already committed, output %s",
        job["job_id"],
        plan.num_shards,
        len(committed),
        redact(cfg.output),
    )
    prior_images = sum(plan.shard_len(k) for k in committed)
    with tqdm(
        total=cfg.count,
        initial=prior_images,
        unit="img",
        desc="generate",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    ) as bar:
        claim = _start_index(cfg, fs, root, committed)
        try:
            sched = _Scheduler(cfg, plan, committed, job, bar, ledger, claim)
            return sched.run(t0), sched.rejected
        finally:
            if claim is not None:  # a joined cluster outlives the job: do not leave the index there
                import ray

                ray.kill(claim.index)


def generate(cfg: GenerateConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """Run (or resume) a generation job; returns the summary also written to `_SUCCESS`.

    Everything that can fail cheaply (bundle, classes, filters, writability, cluster resources) is checked
    before --overwrite deletes anything."""
    t0 = time.perf_counter()
    opts = cfg.storage.options
    meta = read_meta(cfg.model, opts)
    cfg = resolve_class_names(cfg, class_names_of(meta))  # _job.json records ids
    plan = Plan.from_config(cfg, meta["num_classes"])
    check_filter(cfg.filter, meta, redact(cfg.model))
    check_writable(cfg.output, opts)
    fs, root = get_fs(cfg.output, opts)
    fs.invalidate_cache(root)
    new_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    job, finished = prepare_output(fs, root, cfg, meta, overwrite, new_id)
    if finished is not None:
        log.info("%s is already complete (job %s); nothing to do", redact(cfg.output), job["job_id"])
        return finished
    committed, ledger = (set(), None) if overwrite else _open_output(fs, root, cfg, plan)
    done = {"images": 0, "bytes": 0, "shards": 0, "first_commit_s": None}
    rejected = {"score": 0, "duplicate": 0}
    if overwrite or len(committed) < plan.num_shards:
        with ray_session(cfg.address, dashboard=False):
            if overwrite:
                _check_before_overwrite(cfg)
                replace_output(fs, root, cfg, job)
                committed, ledger = _open_output(fs, root, cfg, plan)
            else:
                require_resources("generate", cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica)
            done, rejected = _run(cfg, plan, fs, root, job, committed, ledger, progress, t0)
    seconds = time.perf_counter() - t0
    summary = {
        "count": cfg.count,
        "shards": plan.num_shards,
        "bytes": ledger.bytes,
        "seconds": round(seconds, 3),
        "images_per_s": round(done["images"] / seconds, 2) if seconds > 0 else 0.0,
        "model_id": job["model_id"],
        "job_id": job["job_id"],
        "generated": done["images"],
        "resumed_shards": len(committed),
        "first_commit_s": None if done["first_commit_s"] is None else round(done["first_commit_s"], 3),
        # draws the filters rejected in this run (redrawn from derived seeds; see genart/filters/draw.py)
        "rejected_score": rejected["score"],
        "rejected_duplicate": rejected["duplicate"],
        "genart_version": genart.__version__,
    }
    write_collection(cfg, job)  # collection.json when market.standard: opensea
    success = join(root, layout.SUCCESS)
    retry(
        lambda: fs.pipe_file(success, json.dumps(summary, indent=2).encode()),
        f"writing {redact(cfg.output)}/_SUCCESS",
    )
    ledger.remove()  # the listing and _SUCCESS say it all now
    log.info("job %s complete: %d images, %.1f images/s", job["job_id"], cfg.count, summary["images_per_s"])
    return summary
