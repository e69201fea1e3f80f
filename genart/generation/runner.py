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
from genart.config.generate import GenerateConfig
from genart.config.loader import config_hash
from genart.errors import ConfigError, GenartError, JobFailed
from genart.filters.dedupe import HashIndex
from genart.filters.score import check_filter
from genart.generation.plan import Plan, ShardSpec
from genart.generation.progress import ByteLedger
from genart.generation.replica import GeneratorReplica
from genart.market import write_collection
from genart.ray_session import ray_session, require_resources
from genart.storage import layout
from genart.storage.fs import check_writable, get_fs, join, redact
from genart.storage.writer import retry, scan_metadata, stale_tars

log = logging.getLogger(__name__)


# Keys that only say how to run the job, not what it produces: a resumed job may change them.
EXECUTION_KEYS = {
    "replicas",
    "batch_size",
    "cpus_per_replica",
    "gpus_per_replica",
    "max_in_flight",
    "max_retries",
    "shard_timeout_s",
}
PRIVATE_KEYS = {"storage", "address"}  # never written to the output


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def record_exclude(cfg: GenerateConfig, for_hash: bool) -> dict:
    """What _job.json leaves out (pydantic's nested exclude): credentials and address; filter, dedupe and
    inference blocks while they are off, so jobs written before those keys existed keep their config_hash.
    The hash also leaves out the execution-only keys, filter.max_attempts included (how hard to try: a
    resumed job may raise it)."""
    ex: dict = {k: True for k in PRIVATE_KEYS}
    if cfg.filter.min_score is None:
        ex["filter"] = True
    elif for_hash:
        ex["filter"] = {"max_attempts": True}
    if cfg.dedupe.max_distance is None:
        ex["dedupe"] = True
    if cfg.inference.precision == "fp32":
        ex["inference"] = True
    if for_hash:
        ex.update({k: True for k in EXECUTION_KEYS})
    return ex


def job_record(cfg: GenerateConfig, meta: dict, job_id: str) -> dict:
    """_job.json: the resolved config (no storage options, no address), its hash, model_id, version."""
    public = cfg.model_copy(update={"output": redact(cfg.output), "model": redact(cfg.model)})
    return {
        "config": public.model_dump(mode="json", exclude=record_exclude(cfg, for_hash=False)),
        "config_hash": config_hash(public, exclude=record_exclude(cfg, for_hash=True)),
        "model_id": meta["model_id"],
        "genart_version": genart.__version__,
        "job_id": job_id,
    }


def prepare_output(fs, root: str, cfg: GenerateConfig, meta: dict, overwrite: bool, job_id: str):
    """Compare with what the output already holds; write _job.json for a new job.

    Returns (job record, the _SUCCESS summary when the job is already complete, else None). A different
    config is refused (ConfigError naming the differing keys) and nothing at the output changes.
    """
    new = job_record(cfg, meta, job_id)
    job_path, success = join(root, layout.JOB), join(root, layout.SUCCESS)
    if overwrite:
        for rel in (
            layout.SUCCESS,
            layout.PROGRESS,
            layout.METADATA_DIR,
            layout.IMAGES_DIR,
            layout.SHARDS_DIR,
            layout.TOKENS_DIR,
            layout.COLLECTION,
            layout.JOB,
        ):
            if fs.exists(join(root, rel)):
                fs.rm(join(root, rel), recursive=True)
    elif fs.exists(job_path):
        try:
            old = json.loads(fs.cat_file(job_path))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{redact(cfg.output)}/{layout.JOB} is not valid JSON ({exc}); "
                "pass --overwrite to start this output afresh"
            ) from None
        if old.get("config_hash") != new["config_hash"] or old.get("model_id") != new["model_id"]:
            a, b = _flat(old.get("config", {})), _flat(new["config"])
            keys = sorted(
                k
                for k in a.keys() | b.keys()
                if a.get(k) != b.get(k)
                and k.split(".")[0] not in EXECUTION_KEYS
                and k != "filter.max_attempts"
            )
            if old.get("model_id") != new["model_id"]:
                keys.append("model_id (the bundle's weights changed)")
            raise ConfigError(
                f"{redact(cfg.output)} holds a different job (job {old.get('job_id')}); differing keys: "
                f"{', '.join(keys) or 'unknown'}. Pass --overwrite to replace it, or choose another output"
            )
        return old, (json.loads(fs.cat_file(success)) if fs.exists(success) else None)
    elif fs.exists(success) or scan_metadata(fs, root)[0]:
        raise ConfigError(
            f"{redact(cfg.output)} holds generated shards but no {layout.JOB}; "
            "pass --overwrite to replace them, or choose another output"
        )
    retry(
        lambda: fs.pipe_file(job_path, json.dumps(new, indent=2).encode()),
        f"writing {redact(cfg.output)}/_job.json",
    )
    return new, None


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
    time), loaded with the hashes of the shards already committed. None when dedupe is off."""
    if cfg.dedupe.max_distance is None:
        return None
    import pyarrow.parquet as pq
    import ray

    index = ray.remote(num_cpus=0, max_restarts=0)(HashIndex).remote(cfg.dedupe.max_distance, cfg.count)
    loads = []
    for k in sorted(committed):  # one read per committed shard, of two columns
        with fs.open(join(root, layout.metadata_path(k)), "rb") as f:
            t = pq.read_table(f, columns=["id", "phash"])
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


def generate(cfg: GenerateConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """Run (or resume) a generation job; returns the summary also written to `_SUCCESS`."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    opts = cfg.storage.options
    meta = read_meta(cfg.model, opts)
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
    committed, stale = scan_metadata(fs, root)
    for path in stale + (stale_tars(fs, root) if cfg.layout == "webdataset" else []):
        # temp files of commits interrupted by a killed replica or driver
        fs.rm(path)
    prior_images = sum(plan.shard_len(k) for k in committed)
    ledger = ByteLedger(fs, root, plan.num_shards)
    ledger.resume(committed)  # one GET of _progress.json, not one footer per committed shard
    log.info(
        "job %s: %d shards, %d already committed, output %s",
        job["job_id"],
        plan.num_shards,
        len(committed),
        redact(cfg.output),
    )
    with tqdm(
        total=cfg.count,
        initial=prior_images,
        unit="img",
        desc="generate",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    ) as bar:
        if len(committed) < plan.num_shards:
            with ray_session(cfg.address, dashboard=False):
                require_resources("generate", cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica)
                claim = _start_index(cfg, fs, root, committed)
                try:
                    sched = _Scheduler(cfg, plan, committed, job, bar, ledger, claim)
                    done = sched.run(t0)
                    rejected = sched.rejected
                finally:
                    if claim is not None:  # a joined cluster outlives the job: do not leave the index there
                        import ray

                        ray.kill(claim.index)
        else:
            done = {"images": 0, "bytes": 0, "shards": 0, "first_commit_s": None}
            rejected = {"score": 0, "duplicate": 0}
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
