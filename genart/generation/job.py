"""A generation job's record at its output (_job.json), reading it back, and `--overwrite`.

What makes two jobs the same job (the identity key sets, the hash's exclusions, the key diff) lives in
genart/config/identity.py, beside the configs; this module writes and reads the record at the output.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from genart import __version__
from genart.config.generate import GenerateConfig
from genart.config.identity import differing_keys, record_exclude, same_job
from genart.config.loader import config_hash
from genart.cpu_path import CPU_PATH
from genart.errors import ConfigError, JobRecordError
from genart.storage import layout, safejson
from genart.storage.commit import scan_metadata
from genart.storage.fs import exists, redact, remove_parts
from genart.storage.output import Output
from genart.storage.retry import retry

log = logging.getLogger(__name__)

# keys of _job.json's config that verify relies on (dotted); a record without one of them is incomplete
REQUIRED_KEYS = (
    "kind",
    "model",
    "output",
    "count",
    "seed",
    "shard_size",
    "layout",
    "image.format",
    "classes.mode",
)
RECORD_KEYS = ("config", "config_hash", "model_id", "job_id")

# what an output holds: removed by --overwrite (once the new job is known to run)
OUTPUT_PARTS = (
    layout.SUCCESS,
    layout.PROGRESS,
    layout.METADATA_DIR,
    layout.IMAGES_DIR,
    layout.SHARDS_DIR,
    layout.TOKENS_DIR,
    layout.COLLECTION,
    layout.JOB,
)


def job_record(cfg: GenerateConfig, meta: dict, job_id: str) -> dict:
    """_job.json: the resolved config (no storage options, no address), its hash, model_id, the model's
    num_classes (what `genart verify` checks class ids against), version."""
    public = cfg.model_copy(update={"output": redact(cfg.output), "model": redact(cfg.model)})
    record = {
        "config": public.model_dump(mode="json", exclude=record_exclude(cfg, for_hash=False)),
        "config_hash": config_hash(public, exclude=record_exclude(cfg, for_hash=True)),
        "model_id": meta["model_id"],
        "genart_version": __version__,
        "job_id": job_id,
        "cpu_path": CPU_PATH,  # how a CPU computes its items; a resume keeps the record's (cpu_path_of)
    }
    if "num_classes" in meta:
        record["num_classes"] = int(meta["num_classes"])
    return record


def _read_record(out: Output) -> dict:
    """_job.json as a dict; ConfigError when it is not a JSON object."""
    try:
        old = safejson.loads(out.fs.cat_file(out.path(layout.JOB)))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{out.name}/{layout.JOB} is not valid JSON ({exc}); pass --overwrite to start this output afresh"
        ) from None
    if not isinstance(old, dict):
        raise ConfigError(
            f"{out.name}/{layout.JOB} is not a job record (a JSON object); "
            "pass --overwrite to start this output afresh"
        )
    return old


def _read_success(out: Output) -> dict | None:
    """The _SUCCESS summary, or None when it is missing or unreadable (then the job is resumed)."""
    success = out.path(layout.SUCCESS)
    if not exists(out.fs, success):
        return None
    try:
        done = safejson.loads(out.fs.cat_file(success))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("%s is unreadable (%s); resuming the job to rewrite it", layout.SUCCESS, exc)
        return None
    return done if isinstance(done, dict) else None


def prepare_output(out: Output, cfg: GenerateConfig, meta: dict, overwrite: bool, job_id: str):
    """Compare with what the output already holds; write _job.json for a new job.

    Returns (job record, the _SUCCESS summary when the job is already complete, else None). A different
    config is refused (ConfigError naming the differing keys) and nothing at the output changes; a
    _job.json that cannot be written after the retries is a StorageError. With
    `overwrite` nothing is read or written here: `replace_output` clears the output once the job is known
    to run.
    """
    new = job_record(cfg, meta, job_id)
    if overwrite:
        return new, None
    if exists(out.fs, out.path(layout.JOB)):
        old = _read_record(out)
        if not same_job(old, cfg, meta["model_id"]):
            keys = differing_keys(old, new)
            raise ConfigError(
                f"{out.name} holds a different job (job {old.get('job_id')}); differing keys: "
                f"{', '.join(keys) or 'unknown'}. Pass --overwrite to replace it, or choose another output"
            )
        return old, _read_success(out)
    if exists(out.fs, out.path(layout.SUCCESS)) or scan_metadata(out.fs, out.root)[0]:
        raise ConfigError(
            f"{out.name} holds generated shards but no {layout.JOB}; "
            "pass --overwrite to replace them, or choose another output"
        )
    write_record(out, new)
    return new, None


def write_record(out: Output, job: dict) -> None:
    """_job.json, written with the storage retry policy; StorageError when that still fails."""
    retry(
        lambda: out.fs.pipe_file(out.path(layout.JOB), json.dumps(job, indent=2).encode()),
        f"writing {out.name}/{layout.JOB}",
    )


def replace_output(out: Output, job: dict) -> None:
    """--overwrite, once every cheap check passed: delete what the output holds (each part literally,
    _job.json last), then write the new job's record. Raises StorageError saying what is left."""
    remove_parts(out.fs, out.root, OUTPUT_PARTS, out.name)
    write_record(out, job)


def _lookup(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def record_config(job) -> GenerateConfig:
    """_job.json (its parsed JSON, any value) -> the GenerateConfig it was written from: the one way a
    record's config is read back (verify, verify_rows, preview).

    Raises JobRecordError when the record is not a complete job record: not an object, a missing record
    or config key, a model_id/job_id that is not a string, or a config that does not validate (the first
    pydantic error, named by its key path). Its `problems` lists each finding, as `genart verify` reports
    them (empty when `config` is present but not an object)."""
    if not isinstance(job, dict):
        raise JobRecordError([f"{layout.JOB} is not a JSON object"])
    problems = [f"{layout.JOB}: {k} is missing" for k in RECORD_KEYS if k not in job]
    for k in ("model_id", "job_id"):
        if k in job and not isinstance(job[k], str):
            problems.append(f"{layout.JOB}: {k} is not a string")
    config = job.get("config")
    if not isinstance(config, dict):
        raise JobRecordError(problems)
    problems += [f"{layout.JOB}: config.{k} is missing" for k in REQUIRED_KEYS if _lookup(config, k) is None]
    try:
        cfg = GenerateConfig.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "config"
        problems.append(f"{layout.JOB}: config.{key}: {err['msg'].removeprefix('Value error, ')}")
        raise JobRecordError(problems) from exc
    if problems:
        raise JobRecordError(problems)
    return cfg
