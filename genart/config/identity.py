"""What makes two jobs the same job: the key sets of a job's identity, written once beside the configs.

A job's identity is what it produces: its config minus where things are (LOCATION_KEYS: output, model URI),
what is never written out (PRIVATE_KEYS: storage options, address) and how it runs (the execution keys),
plus the bundle's model_id. The same output spelled another way (a trailing slash, file://, a relative path,
a copied or moved folder, an S3 copy of a local output) therefore resumes. A generate job's record keeps the
0.1.0 config_hash (which covers the output and model URIs as written); a resume recomputes it with the old
record's own output and model (`same_job`), so old outputs keep resuming.
"""

from __future__ import annotations

import hashlib

from genart.config.generate import GenerateConfig
from genart.config.loader import config_hash
from genart.config.synthesize import SynthesizeConfig

# Keys that only say how to run a generate job, not what it produces: a resumed job may change them.
EXECUTION_KEYS = {
    "replicas",
    "batch_size",
    "cpus_per_replica",
    "gpus_per_replica",
    "max_in_flight",
    "max_retries",
    "shard_timeout_s",
    "in_process_below_s",
}
# The same for a synthesize job.
SYNTHESIZE_EXECUTION_KEYS = {
    "replicas",
    "batch_size",
    "cpus_per_replica",
    "gpus_per_replica",
    "keep_candidates",
}
PRIVATE_KEYS = {"storage", "address"}  # never written to the output
LOCATION_KEYS = {"output", "model"}  # where the job writes and reads: not part of its identity


def flatten(d: dict, prefix: str = "") -> dict:
    """{dotted key: leaf value} of a nested dict, e.g. {"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def record_exclude(cfg: GenerateConfig, for_hash: bool) -> dict:
    """What _job.json leaves out (pydantic's nested exclude): credentials and address; filter, dedupe,
    inference and variations blocks while they are off, and provenance at its default (xmp on), so jobs written
    before those keys existed keep their config_hash. The hash also leaves out the execution-only keys,
    filter.max_attempts included (how hard to try: a resumed job may raise it)."""
    ex: dict = {k: True for k in PRIVATE_KEYS}
    if cfg.filter.min_score is None:
        ex["filter"] = True
    elif for_hash:
        ex["filter"] = {"max_attempts": True}
    if cfg.dedupe.max_distance is None:
        ex["dedupe"] = True
    if cfg.inference.precision == "fp32":
        ex["inference"] = True
    if cfg.variations is None:
        ex["variations"] = True
    if cfg.provenance.xmp:
        ex["provenance"] = True
    if for_hash:
        ex.update({k: True for k in EXECUTION_KEYS})
    return ex


def same_job(old: dict, cfg: GenerateConfig, model_id: str) -> bool:
    """Whether the record `old` (a _job.json read back) is the job `cfg` on the bundle `model_id`, wherever
    either output or bundle lies: the hash is recomputed with the old record's own output and model URIs.
    Never raises on a hostile record: anything malformed is simply not the same job."""
    old_cfg = old.get("config")
    if old.get("model_id") != model_id or not isinstance(old_cfg, dict):
        return False
    located = {k: old_cfg.get(k) for k in LOCATION_KEYS}
    if not all(isinstance(v, str) for v in located.values()):
        return False
    relocated = cfg.model_copy(update=located)
    return config_hash(relocated, exclude=record_exclude(cfg, for_hash=True)) == old.get("config_hash")


def differing_keys(old: dict, new: dict) -> list[str]:
    """The identity keys (dotted paths, sorted) in which two job records differ, location and execution keys
    left out; "model_id (...)" is appended when the bundles differ."""
    a = flatten(old.get("config") if isinstance(old.get("config"), dict) else {})
    b = flatten(new["config"])
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


def _synthesize_exclude(cfg: SynthesizeConfig, keys: set[str]) -> dict:
    exclude: dict = {k: True for k in keys}
    if cfg.provenance.xmp:
        exclude["provenance"] = True
    if cfg.filter.scorer == "classifier":
        exclude["filter"] = {"scorer": True}
    return exclude


def dataset_digest(cfg: SynthesizeConfig) -> str:
    """A synthesize job's config hash as 0.1.0 wrote it to _SUCCESS (config_hash): what it makes, not how it
    runs, but with the output and model URIs as written. filter.scorer is left out at its default, so
    datasets made before the key existed keep their hash."""
    return config_hash(cfg, exclude=_synthesize_exclude(cfg, PRIVATE_KEYS | SYNTHESIZE_EXECUTION_KEYS))


def dataset_identity(cfg: SynthesizeConfig, model_id: str) -> str:
    """A dataset's identity (_SUCCESS's `identity`): the config minus location and execution keys, plus the
    bundle's model_id, so the same dataset spelled, copied or moved elsewhere is still the same job."""
    keys = PRIVATE_KEYS | SYNTHESIZE_EXECUTION_KEYS | LOCATION_KEYS
    digest = config_hash(cfg, exclude=_synthesize_exclude(cfg, keys))
    return hashlib.sha256(f"{digest}:{model_id}".encode()).hexdigest()
