"""Where a variations job's parents come from: the picks file, the output it names, and each kept piece's
row and latent there. Read once when the job starts (`resolve_variations`, which fills in the config's
`variations.parent_job` and `variations.parents`), and again by `genart verify` (`parent_problems`).

The picks file (written by `genart gallery`'s "Export picks"):
    {"output": "<the output URI>", "job_id": "...", "keep": [ids], "reject": [ids]}
It is read by `genart.market.picks` (the format's one reader and writer).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow.parquet as pq

from genart.config.generate import GenerateConfig
from genart.config.variations import MAX_PARENTS, ParentRef
from genart.errors import ConfigError, GenartError, JobRecordError
from genart.generation.job import record_config
from genart.generation.plan import children_of
from genart.generation.vary import child_count
from genart.market.picks import Picks, load_picks
from genart.models.sampling import latents
from genart.storage import layout, safejson
from genart.storage.commit import scan_metadata
from genart.storage.fs import exists, redact
from genart.storage.output import Output

log = logging.getLogger(__name__)


def read_picks(uri: str, storage_options: dict | None = None) -> Picks:
    """The picks file at `uri` (any URI), read by genart.market.picks (the one reader of the format; the
    job_id is checked against `variations.of` by resolve_variations). Raises ConfigError naming
    variations.picks for a missing file or any fault parse_picks names."""
    try:
        return load_picks(uri, storage_options, check=False)
    except ConfigError as exc:
        raise ConfigError(f"variations.picks: {exc}") from None


def _parent_job(out: Output) -> tuple[dict, GenerateConfig]:
    """(the output's _job.json, its config); ConfigError naming variations.of when it is not a genart output."""
    if not exists(out.fs, out.path(layout.JOB)):
        raise ConfigError(
            f"variations.of: {out.name} is not a genart output (it has no {layout.JOB}); give the folder "
            "`genart generate` wrote the kept pieces to"
        )
    try:
        job = safejson.loads(out.fs.cat_file(out.path(layout.JOB)))
        return job, record_config(job)
    except (json.JSONDecodeError, UnicodeDecodeError, JobRecordError) as exc:
        raise ConfigError(
            f"variations.of: {out.name}/{layout.JOB} is not a readable job record ({exc})"
        ) from None


def _rows(out: Output, ids: set[int]) -> dict[int, tuple[int, int | None]]:
    """{id: (seed, class_id)} of the committed rows of `out` whose id is in `ids` (id, seed, class_id columns
    only, one part at a time)."""
    found: dict[int, tuple[int, int | None]] = {}
    shards, _ = scan_metadata(out.fs, out.root)
    for k in sorted(shards):
        with out.fs.open(out.path(layout.metadata_path(k)), "rb") as f:
            table = pq.read_table(f, columns=["id", "seed", "class_id"])
        for i, s, c in zip(*(table.column(n).to_pylist() for n in ("id", "seed", "class_id")), strict=True):
            if i in ids:
                found[i] = (s, c)
    return found


def _latents(parent_cfg: GenerateConfig, num_classes: int, ids, seeds, latent_dim: int) -> np.ndarray:
    """float32 (N, latent_dim): the latents the parent job made items `ids` (with `seeds`) from."""
    children = children_of(parent_cfg, num_classes)
    if children is not None:
        return children.latents(np.asarray(ids, dtype=np.int64), latent_dim).numpy()
    return latents(seeds, latent_dim, parent_cfg.truncation).numpy()


def resolve_variations(cfg: GenerateConfig, meta: dict) -> GenerateConfig:
    """`cfg` with variations.parent_job, variations.parents (each kept piece's id, seed, class id and latent)
    and count (the number of children) filled in from the picks file and the output it names; `cfg` itself
    when it has no variations block. Raises ConfigError (naming the key) for a missing or unreadable picks
    file, `of` not a genart output, or made by another model than `meta`'s, picks made for another job
    than `of` holds, kept ids `of` does not hold, no kept ids, cross with fewer than 2 kept, more than
    MAX_PARENTS kept, or a count given that is not the number of children."""
    v = cfg.variations
    if v is None:
        return cfg
    opts = cfg.storage.options
    picks = read_picks(v.picks, opts)
    out = Output.open(v.of, opts)
    job, parent_cfg = _parent_job(out)
    if picks.job_id != job.get("job_id"):
        raise ConfigError(
            f"variations.picks: {redact(v.picks)} was made for job {picks.job_id}, but {out.name} holds job "
            f"{job.get('job_id')} (it was generated again since); curate {out.name} again and export new picks"
        )
    if job.get("model_id") != meta["model_id"]:
        raise ConfigError(
            f"variations.of: {out.name} was made by model {str(job.get('model_id'))[:12]}..., this job's model "
            f"is {meta['model_id'][:12]}...; variations start from the parents' latents, so use the same model"
        )
    if not picks.keep:
        raise ConfigError(f"variations.picks: {redact(v.picks)} keeps nothing; keep at least one piece")
    if v.cross and len(picks.keep) < 2:
        raise ConfigError(
            f"variations.cross needs at least 2 kept pieces to cross; {redact(v.picks)} keeps "
            f"{len(picks.keep)}. Keep more, or set variations.cross: false"
        )
    if len(picks.keep) > MAX_PARENTS:
        raise ConfigError(f"variations.picks: {len(picks.keep)} kept pieces, more than {MAX_PARENTS} per job")
    rows = _rows(out, set(picks.keep))
    unknown = [i for i in picks.keep if i not in rows]
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:20]) + (", ..." if len(unknown) > 20 else "")
        raise ConfigError(
            f"variations.picks: keep names {len(unknown)} id(s) that {out.name} does not hold: {shown} "
            f"(its items are 0..{parent_cfg.count - 1}); export the picks from that output again"
        )
    seeds = [rows[i][0] for i in picks.keep]
    z = _latents(parent_cfg, meta["num_classes"], picks.keep, seeds, meta["latent_dim"])
    parents = [
        ParentRef(id=i, seed=s, class_id=rows[i][1], latent=zi.tolist())
        for i, s, zi in zip(picks.keep, seeds, z, strict=True)
    ]
    count = child_count(len(parents), v.per_item, v.cross, v.cross_per_pair)
    if "count" in cfg.model_fields_set and cfg.count != count:
        raise ConfigError(
            f"count: this variations job makes {count} items ({len(parents)} kept x per_item {v.per_item}"
            f"{' + crosses' if v.cross else ''}), not {cfg.count}; leave count out of variations jobs"
        )
    filled = v.model_copy(update={"parent_job": job["job_id"], "parents": parents})
    return cfg.model_copy(update={"variations": filled, "count": count})


def parent_problems(cfg: GenerateConfig, storage_options: dict | None = None) -> list[str]:
    """`genart verify` of a variations output: the output its record names (`variations.of`), when it can be
    read, holds job `parent_job` and every recorded parent with the same seed, class id and latent. [] when
    `of` cannot be read (it may have been moved: the child output stands on its own record) or all agree."""
    v = cfg.variations
    try:
        out = Output.open(v.of, storage_options)
        job, parent_cfg = _parent_job(out)
        rows = _rows(out, {p.id for p in v.parents})
    except (GenartError, OSError) as exc:
        log.info(
            "verify: the parents' output %s is not readable (%s); parents not checked", redact(v.of), exc
        )
        return []
    where = f"variations.of {out.name}"
    if job.get("job_id") != v.parent_job:
        return [f"{where} holds job {job.get('job_id')}, not the parents' job {v.parent_job}"]
    problems = []
    for p in v.parents:
        if p.id not in rows:
            problems.append(f"{where}: parent id {p.id} is not in that output")
        elif rows[p.id] != (p.seed, p.class_id):
            problems.append(
                f"{where}: parent id {p.id} has seed {rows[p.id][0]}, class {rows[p.id][1]} there, "
                f"_job.json records seed {p.seed}, class {p.class_id}"
            )
    known = [p for p in v.parents if p.id in rows]
    if known and known[0].latent:
        ids, seeds = [p.id for p in known], [p.seed for p in known]
        try:
            z = _latents(parent_cfg, int(job.get("num_classes") or 0), ids, seeds, len(known[0].latent))
        except ValueError as exc:  # a parents' record whose own parents' latents are malformed
            return problems + [f"{where}: the parents' latents cannot be made again ({exc})"]
        for p, zi in zip(known, z, strict=True):
            if zi.tolist() != p.latent:
                problems.append(
                    f"{where}: parent id {p.id}: the recorded latent is not the one its seed makes"
                )
    return problems
