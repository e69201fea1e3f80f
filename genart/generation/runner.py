"""The generation driver: plan -> shard scheduler (GeneratorReplica actors) -> committed shards -> _SUCCESS.

Order of writes at the output: _job.json first, then each shard's images and metadata/part-NNNNN.parquet (by
the replicas), _SUCCESS last. The output is resolved once (`storage.output.Output`) and passed down.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from genart import __version__
from genart.bundle import read_meta
from genart.config.generate import GenerateConfig, check_image_format, resolve_class_names
from genart.filters.score import check_filter
from genart.generation.job import job_record, prepare_output, replace_output
from genart.generation.ledger import ByteLedger
from genart.generation.local import InProcess
from genart.generation.parents import resolve_variations
from genart.generation.plan import Plan
from genart.generation.records import JobSummary, Tally
from genart.generation.scheduler import ColdPool, run_shards
from genart.market import write_collection
from genart.ray_session import joined_warm, ray_session, require_resources
from genart.storage import layout
from genart.storage.commit import scan_metadata, stale_tars
from genart.storage.fs import redact
from genart.storage.hf import class_names_of
from genart.storage.output import Output
from genart.storage.retry import retry

__all__ = ["generate", "job_record", "prepare_output"]  # job_record, prepare_output: genart.generation.job

log = logging.getLogger(__name__)


def generate(cfg: GenerateConfig, overwrite: bool = False, progress: bool = True) -> JobSummary:
    """Run (or resume) a generation job at `cfg.output`; returns its JobSummary, whose `as_dict()` is also
    written to `_SUCCESS`.

    Returns: a `genart.generation.records.JobSummary`: `count`, `shards`, `bytes` (encoded image bytes of all
    committed shards), `seconds` and `images_per_s` (this run), `model_id`, `job_id`, `generated` (images
    this run made), `resumed_shards`, `first_commit_s`, `rejected_score`, `rejected_duplicate`,
    `genart_version`. A job already complete returns the summary its `_SUCCESS` holds (nothing runs).

    Everything that can fail cheaply (bundle, classes, filters, writability, cluster resources) is checked
    before --overwrite deletes anything. Raises (all from `genart.errors`):
    - BundleError: the bundle's model.json cannot be read, its weights do not load, or it changed during the
      job (its model_id differs from the job's);
    - ConfigError: classes or a quality filter the bundle cannot serve; a variations job's picks file or
      parents' output refused (genart.generation.parents.resolve_variations); the output holds a different job
      (naming the differing keys), shards without a _job.json, or an unreadable _job.json;
    - StorageError: the output cannot be opened or written, or a write still fails after the bounded
      retries of `storage/retry.py`;
    - ClusterError: the Ray cluster cannot be joined or cannot host `replicas` replicas of
      cpus_per_replica/gpus_per_replica;
    - JobFailed: a shard task raised, a shard's replicas died more than max_retries times, or loading the
      near-duplicate index timed out. Committed shards are kept: re-running the same command resumes.
    """
    t0 = time.perf_counter()
    meta = read_meta(cfg.model, cfg.storage.options)
    cfg = resolve_class_names(cfg, class_names_of(meta), meta["num_classes"])  # _job.json records ids
    cfg = resolve_variations(cfg, meta)  # the parents (picks + the output they name) and the count
    plan = Plan.from_config(cfg, meta["num_classes"])
    check_filter(cfg.filter, meta, redact(cfg.model))
    check_image_format(cfg.image, meta["channels"])
    out = Output.open(cfg.output, cfg.storage.options)
    out.check_writable()
    out.fs.invalidate_cache(out.root)
    job, finished = prepare_output(out, cfg, meta, overwrite, _new_job_id())
    if finished is not None:
        log.info("%s is already complete (job %s); nothing to do", out.name, job["job_id"])
        return JobSummary.from_dict(finished)
    committed, ledger, tally = _run_pending(cfg, plan, out, job, overwrite, progress, t0)
    summary = _summary(cfg, plan, job, ledger, tally, len(committed), time.perf_counter() - t0)
    _finish(cfg, out, job, summary, ledger)
    return summary


def _new_job_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def _run_pending(cfg: GenerateConfig, plan: Plan, out: Output, job: dict, overwrite: bool, progress, t0):
    """(committed shards at the start, the byte ledger, this run's Tally): the shards not yet committed
    generated in this process when they are quick and nothing is to be joined (generation/local.py), else
    inside a Ray session (none started when every shard is already committed)."""
    committed, ledger = (set(), None) if overwrite else _open_output(out, cfg, plan)
    if not overwrite and len(committed) >= plan.num_shards:
        return committed, ledger, Tally()
    pending = cfg.count - sum(plan.shard_len(k) for k in committed)
    here = InProcess.open_if_quick(cfg, plan, job, pending)  # loads the bundle: checked before --overwrite
    if here is not None:
        try:
            if overwrite:
                replace_output(out, job)
                committed, ledger = _open_output(out, cfg, plan)
            tally = here.run(plan, out, committed, ledger, progress, t0)
        finally:
            here.close()
        return committed, ledger, tally
    with ray_session(cfg.address, dashboard=False):
        warm = joined_warm()  # `genart up` runs: its warm replicas serve the job (they hold no logical CPU)
        if overwrite:
            _check_before_overwrite(cfg, warm)
            replace_output(out, job)
            committed, ledger = _open_output(out, cfg, plan)
        else:
            _require(cfg, warm)
        pool = _warm_pool() if warm else ColdPool
        tally = run_shards(cfg, plan, out, job, committed, ledger, progress=progress, t0=t0, pool_cls=pool)
    return committed, ledger, tally


def _open_output(out: Output, cfg: GenerateConfig, plan: Plan) -> tuple[set[int], ByteLedger]:
    """The shards an earlier run committed (one listing; a shard whose part is unreadable is left out, to
    be redone) and the byte ledger accounting for them. Removes temp files of interrupted commits."""
    committed, stale = scan_metadata(out.fs, out.root)
    for path in stale + (stale_tars(out.fs, out.root) if cfg.layout == "webdataset" else []):
        try:  # temp files of commits interrupted by a killed replica or driver
            out.fs.rm_file(path)
        except FileNotFoundError:
            pass
    committed = {k for k in committed if k < plan.num_shards}
    ledger = ByteLedger(out, plan.num_shards)
    committed -= ledger.resume(committed)  # one GET of _progress.json, not one footer per committed shard
    return committed, ledger


def _check_before_overwrite(cfg: GenerateConfig, warm: bool) -> None:
    """What --overwrite must know before it deletes anything: the bundle loads (weights match model.json)
    and the cluster can host the replicas (called inside the Ray session)."""
    from genart.bundle import load_bundle

    load_bundle(cfg.model, cfg.storage.options)
    _require(cfg, warm)


def _require(cfg: GenerateConfig, warm: bool) -> None:
    """The cluster can host the replicas (warm ones reserve GPUs but no CPU)."""
    require_resources("generate", cfg.replicas, 0.0 if warm else cfg.cpus_per_replica, cfg.gpus_per_replica)


def _warm_pool():
    from genart.generation.warm import WarmPool  # ray's actor API: imported only when `genart up` runs

    return WarmPool


def _summary(cfg, plan: Plan, job: dict, ledger, tally: Tally, resumed: int, seconds: float) -> JobSummary:
    return JobSummary(
        count=cfg.count,
        shards=plan.num_shards,
        bytes=ledger.bytes,
        seconds=round(seconds, 3),
        images_per_s=round(tally.images / seconds, 2) if seconds > 0 else 0.0,
        model_id=job["model_id"],
        job_id=job["job_id"],
        generated=tally.images,
        resumed_shards=resumed,
        first_commit_s=None if tally.first_commit_s is None else round(tally.first_commit_s, 3),
        # draws the filters rejected in this run (redrawn from derived seeds; see genart/filters/draw.py)
        rejected_score=tally.rejected_score,
        rejected_duplicate=tally.rejected_duplicate,
        genart_version=__version__,
    )


def _finish(cfg: GenerateConfig, out: Output, job: dict, summary: JobSummary, ledger: ByteLedger) -> None:
    """collection.json (market.standard: opensea), then _SUCCESS: the job's last write."""
    write_collection(cfg, job, out)
    body = json.dumps(summary.as_dict(), indent=2).encode()
    retry(lambda: out.fs.pipe_file(out.path(layout.SUCCESS), body), f"writing {out.name}/_SUCCESS")
    ledger.remove()  # the listing and _SUCCESS say it all now
    log.info("job %s complete: %d images, %.1f images/s", job["job_id"], cfg.count, summary.images_per_s)
