"""A generation job's record at its output (_job.json) and what makes two jobs the same job.

A job's identity is what it produces: its config minus where things are (output, model URI, storage,
address) and how it runs (EXECUTION_KEYS), plus the bundle's model_id. The same output spelled another way
(a trailing slash, file://, a relative path, a copied or moved folder, an S3 copy of a local output)
therefore resumes. _job.json keeps the 0.1.0 config_hash (which covers the output and model URIs as
written); a resume recomputes it with the old record's own output and model, so old outputs keep resuming.
"""

from __future__ import annotations

import json
import logging

import genart
from genart.config.generate import GenerateConfig
from genart.config.loader import config_hash
from genart.errors import ConfigError
from genart.storage import layout, safejson
from genart.storage.commit import scan_metadata
from genart.storage.fs import exists, redact, remove_parts
from genart.storage.output import Output
from genart.storage.retry import retry

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
LOCATION_KEYS = {"output", "model"}  # where the job writes and reads: not part of its identity
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
    """_job.json: the resolved config (no storage options, no address), its hash, model_id, the model's
    num_classes (what `genart verify` checks class ids against), version."""
    public = cfg.model_copy(update={"output": redact(cfg.output), "model": redact(cfg.model)})
    record = {
        "config": public.model_dump(mode="json", exclude=record_exclude(cfg, for_hash=False)),
        "config_hash": config_hash(public, exclude=record_exclude(cfg, for_hash=True)),
        "model_id": meta["model_id"],
        "genart_version": genart.__version__,
        "job_id": job_id,
    }
    if "num_classes" in meta:
        record["num_classes"] = int(meta["num_classes"])
    return record


def same_job(old: dict, cfg: GenerateConfig, model_id: str) -> bool:
    """Whether the record `old` (a _job.json read back) is the job `cfg` on the bundle `model_id`, wherever
    either output or bundle lies: the hash is recomputed with the old record's own output and model URIs."""
    old_cfg = old.get("config")
    if old.get("model_id") != model_id or not isinstance(old_cfg, dict):
        return False
    located = {k: old_cfg.get(k) for k in LOCATION_KEYS}
    if not all(isinstance(v, str) for v in located.values()):
        return False
    relocated = cfg.model_copy(update=located)
    return config_hash(relocated, exclude=record_exclude(cfg, for_hash=True)) == old.get("config_hash")


def differing_keys(old: dict, new: dict) -> list[str]:
    """The identity keys in which two records differ (location and execution keys left out)."""
    a = _flat(old.get("config") if isinstance(old.get("config"), dict) else {})
    b = _flat(new["config"])
    keys = sorted(
        k
        for k in a.keys() | b.keys()
        if a.get(k) != b.get(k)
        and k.split(".")[0] not in EXECUTION_KEYS | LOCATION_KEYS | PRIVATE_KEYS
        and k != "filter.max_attempts"
    )
    if old.get("model_id") != new["model_id"]:
        keys.append("model_id (the bundle's weights changed)")
    return keys


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
