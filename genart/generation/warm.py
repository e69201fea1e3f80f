"""Warm replicas: processes that keep bundles loaded in the local Ray `genart up` started, reused by later jobs.

Each is a detached named actor in the `genart-warm` namespace (`actor_name`: the bundle's URI, cpu/gpu,
slot), so it outlives the job that created it and any later driver finds it with `ray.get_actor`. A job opens
a `GeneratorReplica` on the warm bundle (`WarmReplica.open`), runs its shards, and closes it; the bundle
stays. A bundle is reused only while its model.json's model_id and its weights file (size, mtime/ETag) are
those it was loaded from; otherwise it is loaded again, checked by sha256 exactly as a cold replica does.
Imports ray.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
import uuid
from collections import OrderedDict

import ray

from genart.config.generate import GenerateConfig
from genart.cpu_path import CPU_PATH, cpu_path_of
from genart.errors import BundleError, GenartError, JobFailed
from genart.generation.scheduler import error_cause
from genart.storage.fs import get_fs, join, redact
from genart.warm_state import NAMESPACE, utc_now

log = logging.getLogger(__name__)

OPEN_JOBS = 8  # per-job replicas one warm actor keeps open (a driver killed before closing leaks no more)
OPEN_TIMEOUT_S = 600.0  # loading a bundle that is not warm yet, bounded
DEAD_RETRIES = 3  # a slot's replica found dead while opening a job is created again this often
NAME_RETRIES = 50  # ray.kill is asynchronous: a dead actor's name is free again a moment later


def canonical(uri: str) -> str:
    """A local path made absolute (the warm actors run in `genart up`'s working directory); URIs as they are."""
    return uri if "://" in uri else os.path.abspath(uri)


def actor_name(model_uri: str, gpus: float, slot: int) -> str:
    key = hashlib.sha256(canonical(model_uri).encode()).hexdigest()[:16]
    return f"replica-{key}-{'gpu' if gpus > 0 else 'cpu'}-{slot}"


def _fingerprint(uri: str, options: dict | None) -> str:
    """What changes when the weights file is replaced: its size and modification time (or ETag)."""
    from genart.bundle.meta import WEIGHTS

    fs, path = get_fs(uri, options)
    info = fs.info(join(path, WEIGHTS))
    return repr([info.get(k) for k in ("size", "mtime", "ETag", "LastModified", "md5Hash", "generation")])


@dataclasses.dataclass
class _Loaded:
    bundle: object  # genart.bundle.Bundle
    fingerprint: str
    since: str
    shards: int = 0
    jobs: int = 0


class WarmReplica:
    """One warm process: bundles by URI, and per open job a GeneratorReplica built on its bundle.

    Shards run one at a time (the default concurrency group); `open`, `close`, `info` and `load` run on a
    separate control thread, so `genart status` and a new job's open answer while a shard runs."""

    def __init__(self):
        self.bundles: dict[str, _Loaded] = {}
        self.jobs: OrderedDict = OrderedDict()  # token -> (GeneratorReplica, bundle uri)
        self.started_at = utc_now()

    @ray.method(concurrency_group="control")
    def load(self, uri: str, options: dict | None, model_id: str | None, gpus: float) -> dict:
        """Make bundle `uri` warm: reuse it when its model.json model_id (when given) and its weights file
        are unchanged, else load it (sha256-checked). Returns {reused, reason, model_id, since}. Raises
        BundleError as `load_bundle` does, or when the weights are not those of `model_id`."""
        from genart.bundle import load_bundle
        from genart.generation.engine import choose_device

        held = self.bundles.get(uri)
        print_ = _fingerprint(uri, options)
        if held is not None and print_ == held.fingerprint and model_id in (None, held.bundle.model_id):
            return {"reused": True, "reason": "warm", "model_id": held.bundle.model_id, "since": held.since}
        reason = "not loaded yet" if held is None else "the bundle changed on disk"
        bundle = load_bundle(uri, options, device=str(choose_device(gpus)))
        if model_id is not None and bundle.model_id != model_id:
            raise BundleError(
                f"bundle {redact(uri)} changed during the job (model_id {bundle.model_id[:12]}..., the job "
                f"started with {model_id[:12]}...); re-run with --overwrite to use the new model"
            )
        self.bundles[uri] = _Loaded(bundle, print_, utc_now())
        log.info("warm replica pid %d: loaded %s (%s)", os.getpid(), redact(uri), reason)
        return {
            "reused": False,
            "reason": reason,
            "model_id": bundle.model_id,
            "since": self.bundles[uri].since,
        }

    @ray.method(concurrency_group="control")
    def open(
        self,
        token: str,
        cfg: GenerateConfig,
        job_id: str,
        model_id: str,
        claim=None,
        cpu_path: str = CPU_PATH,
    ) -> dict:
        """Open job `token` (a GeneratorReplica on the warm bundle of cfg.model); returns what `load` returns
        plus this process's pid. Raises what `load` and GeneratorReplica raise."""
        from genart.generation.replica import GeneratorReplica

        info = self.load(cfg.model, cfg.storage.options, model_id, cfg.gpus_per_replica)
        held = self.bundles[cfg.model]
        self.jobs[token] = (GeneratorReplica(cfg, job_id, model_id, claim, held.bundle, cpu_path), cfg.model)
        held.jobs += 1
        while len(self.jobs) > OPEN_JOBS:  # the oldest, whose driver never closed it
            self.jobs.popitem(last=False)[1][0].close()
        return {**info, "pid": os.getpid()}

    def run_shard(self, token: str, spec):
        """Run one shard of open job `token` (GeneratorReplica.run_shard). Raises JobFailed when the job is
        not open here (it was evicted after OPEN_JOBS newer jobs)."""
        import torch

        from genart.generation.replica import threads

        if token not in self.jobs:
            raise JobFailed(
                "this warm replica no longer holds the job (too many jobs opened since); re-run to resume"
            )
        replica, uri = self.jobs[token]
        torch.set_num_threads(threads(replica.cfg))  # another job may have changed it
        result = replica.run_shard(spec)
        self.bundles[uri].shards += 1
        return result

    @ray.method(concurrency_group="control")
    def close(self, token: str) -> None:
        entry = self.jobs.pop(token, None)
        if entry is not None:
            entry[0].close()

    @ray.method(concurrency_group="control")
    def info(self) -> dict:
        """{pid, started_at, open_jobs, bundles: [{uri, model_id, since, jobs, shards}]} for `genart status`."""
        bundles = [
            {
                "uri": redact(u),
                "model_id": b.bundle.model_id,
                "since": b.since,
                "jobs": b.jobs,
                "shards": b.shards,
            }
            for u, b in self.bundles.items()
        ]
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "open_jobs": len(self.jobs),
            "bundles": bundles,
        }

    def apply(self, uri: str, options: dict | None, model_id: str, fn, *args):
        """fn(bundle, *args) on the warm bundle `uri` (loaded first when needed), with torch on one thread per
        core as in a fresh process: `genart walk`'s frames."""
        import torch

        self.load(uri, options, model_id, 0.0)
        torch.set_num_threads(os.cpu_count() or 1)
        return fn(self.bundles[uri].bundle, *args)


def warm_actor(model_uri: str, gpus: float, slot: int):
    """The warm replica of this bundle, device kind and slot: found by name, or created detached (taking no
    logical CPU: it is idle between jobs, and each job sets its torch threads from cpus_per_replica)."""
    from ray.exceptions import RayError

    cls = ray.remote(concurrency_groups={"control": 1})(WarmReplica).options(
        name=actor_name(model_uri, gpus, slot),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        num_gpus=gpus,
        max_restarts=0,
        max_task_retries=0,
    )
    for attempt in range(NAME_RETRIES):
        try:
            return cls.remote()
        except (ValueError, RayError):  # the name of an actor just killed is still taken (ray#20611)
            if attempt == NAME_RETRIES - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _raise_cause(exc: BaseException, what: str):
    cause = getattr(exc, "cause", None)
    if isinstance(cause, GenartError):
        raise cause from exc
    raise JobFailed(f"{what}: {error_cause(exc)}") from exc


class WarmPool:
    """The scheduler's replicas in `genart up`'s Ray: warm actors, opened for this job and closed after it
    (never killed at the end of a job; a replica that died or hung is replaced under the same name)."""

    def __init__(self, cfg: GenerateConfig, job: dict, claim=None):
        self.token = uuid.uuid4().hex
        # paths as the replicas see them (their working directory is genart up's)
        remote_cfg = cfg.model_copy(update={"model": canonical(cfg.model), "output": canonical(cfg.output)})
        remote_cfg._measures = cfg.measures
        self.cfg = remote_cfg
        self.args = (self.token, remote_cfg, job["job_id"], job["model_id"], claim, cpu_path_of(job))
        self.opened: list = []

    def _open(self, slots: list[int]) -> tuple[list, list[dict]]:
        """(actors, what each open returned) for these slots. A replica found dead (killed, or its name still
        held a moment after it died) is created again, at most DEAD_RETRIES times per slot."""
        gpus = self.cfg.gpus_per_replica
        actors = [warm_actor(self.cfg.model, gpus, s) for s in slots]
        refs = [a.open.remote(*self.args) for a in actors]
        infos: list = [None] * len(slots)
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        for i, slot in enumerate(slots):
            for attempt in range(DEAD_RETRIES + 1):
                try:
                    infos[i] = ray.get(refs[i], timeout=max(1.0, deadline - time.monotonic()))
                    break
                except ray.exceptions.GetTimeoutError:
                    self.release(actors, [])
                    raise JobFailed(
                        f"warm replicas did not load {redact(self.cfg.model)} within {OPEN_TIMEOUT_S:g}s"
                    ) from None
                except ray.exceptions.RayActorError as exc:
                    if attempt == DEAD_RETRIES:
                        self.release(actors, [])
                        _raise_cause(
                            exc, f"warm replica {slot} died {DEAD_RETRIES + 1} times while opening the job"
                        )
                    time.sleep(0.5)
                    actors[i] = warm_actor(self.cfg.model, gpus, slot)
                    refs[i] = actors[i].open.remote(*self.args)
                except ray.exceptions.RayError as exc:
                    self.release(actors, [])
                    _raise_cause(exc, "a warm replica could not open the job")
        self.opened += actors
        return actors, infos

    def start_all(self, n: int) -> list:
        actors, infos = self._open(list(range(n)))
        reused = sum(i["reused"] for i in infos)
        if reused == n:
            log.info(
                "warm replicas: %d of %d serve this job (bundle %s, model_id %s..., warm since %s; pids %s)",
                reused, n, redact(self.cfg.model), infos[0]["model_id"][:12],
                min(i["since"] for i in infos), ",".join(str(i["pid"]) for i in infos),
            )  # fmt: skip
        else:
            reasons = sorted({i["reason"] for i in infos if not i["reused"]})
            log.info(
                "warm replicas: %d of %d reused; %d loaded %s (%s) and kept warm",
                reused, n, n - reused, redact(self.cfg.model), ", ".join(reasons),
            )  # fmt: skip
        return actors

    def start(self, slot: int):
        return self._open([slot])[0][0]

    def submit(self, actor, spec):
        return actor.run_shard.remote(self.token, spec)

    def release(self, actors: list, inflight: list) -> None:
        """Cancel this job's shards still queued (a running one finishes its commit) and close the job on
        every replica it opened; the replicas stay warm."""
        for ref in inflight:
            ray.cancel(ref)
        for actor in {a._actor_id: a for a in [*self.opened, *actors]}.values():
            try:
                actor.close.remote(self.token)
            except ray.exceptions.RayError:  # a replica that died with the job
                pass


def call_warm(uri: str, options: dict | None, fn, *args):
    """fn(bundle, *args) in warm replica 0 of bundle `uri` when `genart up` runs (the bundle is loaded there
    once and kept); None when it does not run or cannot be joined (the caller works cold, as without up).
    Raises what fn raises (a GenartError comes back as itself), BundleError as `load_bundle` does."""
    from genart.bundle import read_meta
    from genart.errors import ClusterError
    from genart.ray_session import warm_session
    from genart.warm_state import find_warm

    state = find_warm()
    if state is None:
        return None
    model_id = read_meta(uri, options)["model_id"]
    try:
        session = warm_session(state)
        session.__enter__()
    except ClusterError as exc:
        log.warning("%s: running cold", exc)
        return None
    try:
        actor = warm_actor(uri, 0.0, 0)
        ref = actor.apply.remote(canonical(uri), options, model_id, fn, *args)
        log.info("warm replica: %s on bundle %s", getattr(fn, "__name__", "call"), redact(uri))
        return ray.get(ref, timeout=OPEN_TIMEOUT_S)
    except ray.exceptions.RayError as exc:
        _raise_cause(exc, "the warm replica failed")
    finally:
        session.__exit__(None, None, None)
