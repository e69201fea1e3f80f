"""The `genart synthesize` driver: rounds of candidates through the generation engine, then the dataset.

Candidates are made by `genart.generation.runner.generate` itself (GeneratorReplica actors, shards,
resume, exactly once, any fsspec URI) into OUTPUT/_candidates/round-NN, one job per round with a
deterministic class schedule (`classes.mode: list`). Scoring, dedupe, splits and writing are plain Python
(select.py, splits.py, write.py, card.py). Re-running the same config resumes: finished rounds are not
regenerated, and since every choice is deterministic the same rounds and the same dataset come out.
Order of writes: candidates, data/, samples.png, README.md, _SUCCESS; then _candidates/ is removed
(unless keep_candidates).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genart import __version__
from genart.bundle import load_bundle, read_meta
from genart.config.common import ProvenanceConfig
from genart.config.generate import ClassesConfig, GenerateConfig, ImageConfig
from genart.config.identity import dataset_digest, dataset_identity
from genart.config.synthesize import MAX_ITEMS, SPLITS, SynthesizeConfig, resolve_per_class
from genart.errors import ConfigError, JobFailed
from genart.filters.measure import Measures
from genart.filters.score import decode_images, digit_classifier, is_digits_model, make_scorer
from genart.generation.runner import generate
from genart.images import Batch
from genart.market.xmp import Provenance
from genart.ray_session import ray_session, require_resources
from genart.storage import layout, safejson
from genart.storage.commit import scan_metadata
from genart.storage.fs import exists, join, redact, remove, remove_parts
from genart.storage.output import Output
from genart.storage.retry import retry
from genart.synthesis import card, write
from genart.synthesis.records import SynthesisSummary
from genart.synthesis.select import SAMPLES, Candidates, Selection, class_schedule, round_plan
from genart.synthesis.splits import assign_splits

log = logging.getLogger(__name__)

# what a dataset output holds: removed by --overwrite (once the new job is known to run)
OUTPUT_PARTS = (write.SUCCESS, write.README, write.SAMPLES, write.DATA_DIR, write.CANDIDATES_DIR)


def round_seed(seed: int, r: int) -> int:
    """Job seed of candidate round r (round 0 uses the config's seed): fresh items every round."""
    if r == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"genart-synthesize:{seed}:{r}".encode()).digest()[:8], "big") >> 2


def round_dir(root: str, r: int) -> str:
    """Where candidate round r is generated, under the dataset's root (a path or URI)."""
    return join(root.rstrip("/"), write.CANDIDATES_DIR, f"round-{r:02d}")


def candidate_measures(cfg: SynthesizeConfig, meta: dict, opts: dict | None) -> Measures:
    """What every candidate's metadata records for the selection: its phash always; its score by the
    filter's scorer when filter.min_score is set; and then, for digits models, whether eval's SVC (an
    independent judge of what the filter bought) agrees with its class. The scorer and the judge are
    fitted here, in the driver, once. Raises ConfigError for a filter this bundle cannot serve."""
    scorer = make_scorer(cfg.filter, meta, cfg.model, opts)
    judge = digit_classifier() if scorer is not None and is_digits_model(meta) else None
    return Measures(scorer=scorer, phash=True, judge=judge)


def candidate_config(
    cfg: SynthesizeConfig, r: int, schedule: list[int], measures: Measures | None = None
) -> GenerateConfig:
    """The `kind: generate` job of round r. A schedule that cycles over its classes is given as that cycle.
    `measures`: the columns its replicas record (not part of the job's config or identity)."""
    classes = sorted(set(schedule))
    ids = classes if schedule == classes * (len(schedule) // len(classes)) else schedule
    return GenerateConfig(
        kind="generate",
        model=cfg.model,
        output=round_dir(cfg.output, r),
        count=len(schedule),
        seed=round_seed(cfg.seed, r),
        replicas=cfg.replicas,
        shard_size=cfg.candidate_shard_size,
        batch_size=cfg.batch_size,
        cpus_per_replica=cfg.cpus_per_replica,
        gpus_per_replica=cfg.gpus_per_replica,
        image=ImageConfig(format="png"),
        layout="parquet",
        classes=ClassesConfig(mode="list", ids=ids),
        provenance=ProvenanceConfig(
            xmp=False
        ),  # the dataset's own XMP (its ids, its identity) is stamped at the write
        storage=cfg.storage,
        address=cfg.address,
    ).with_measures(measures)


def round_parts(fs, root: str) -> list[str]:
    """The metadata parts of a finished round, in id order."""
    committed, _ = scan_metadata(fs, root)
    return [join(root, layout.metadata_path(k)) for k in sorted(committed)]


def _read_part(fs, root: str, path: str) -> tuple[pa.Table, list[bytes]]:
    with fs.open(path, "rb") as f:
        t = pq.read_table(f).sort_by("id")
    if "image" in t.column_names:
        blobs = [b["bytes"] for b in t.column("image").to_pylist()]
    else:
        blobs = [fs.cat_file(join(root, p)) for p in t.column("path").to_pylist()]
    return t, blobs


def iter_round(fs, root: str, gcfg: GenerateConfig, offset: int):
    """A finished round's candidates (the round's generate config `gcfg`, with its measures; `root`: its
    folder on `fs`, the path of gcfg.output) one metadata
    part at a time, in id order (ids offset to be unique across rounds): (Candidates, the independent
    judge's verdicts (bool (N,)) or None). Reads only the columns the selection needs (id, seed, class_id
    and the measures: score float32, phash uint64, judged bool); a part written before the replicas
    recorded them (a round resumed from an older version) is decoded and measured here, by the same
    scorer. Raises StorageError (retries spent) or pyarrow's errors for an unreadable part."""
    measures = gcfg.measures
    cols = ["id", "seed", "class_id", *measures.columns()]
    for path in round_parts(fs, root):
        t = _read_columns(fs, path, cols)
        if t is None:
            t, blobs = _read_part(fs, root, path)
            labels = t.column("class_id").to_numpy().astype(np.int64)
            seeds = t.column("seed").to_numpy()
            batch = measures(Batch(t.column("id").to_numpy(), seeds, labels, decode_images(blobs)))
            score, phash, judged = batch.score, batch.phash, batch.judged
        else:
            score = t.column("score").to_numpy() if measures.scorer is not None else None
            phash = t.column("phash").to_numpy()
            judged = t.column("judged").to_numpy(zero_copy_only=False) if measures.judge is not None else None
        cand = Candidates(
            ids=t.column("id").to_numpy().astype(np.int64) + offset,
            seeds=t.column("seed").to_numpy().astype(np.int64),
            class_ids=t.column("class_id").to_numpy().astype(np.int64),
            phash=phash,
            score=score,
        )
        yield cand, judged


def _read_columns(fs, path: str, cols: list[str]) -> pa.Table | None:
    """Columns `cols` of one metadata part, sorted by id; None when the part lacks one of them."""
    with fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        if not set(cols) <= set(pf.schema_arrow.names):
            return None
        return pf.read(columns=cols).sort_by("id")


def kept_blobs(fs, root: str, offsets: list[int], kept: set[int], samples: dict[int, bytes] | None = None):
    """(global id, encoded image) of the kept items, in ascending id order, streamed from the candidates.
    `samples`: ids whose bytes are also kept there (id -> bytes) for samples.png."""
    for r, offset in enumerate(offsets):
        rroot = round_dir(root, r)
        for path in round_parts(fs, rroot):
            t, blobs = _read_part(fs, rroot, path)
            for i, blob in zip(t.column("id").to_pylist(), blobs, strict=True):
                if i + offset in kept:
                    if samples is not None and i + offset in samples:
                        samples[i + offset] = blob
                    yield i + offset, blob


def _check(cfg: SynthesizeConfig, meta: dict) -> dict[int, int]:
    n = meta["num_classes"]
    if not n:
        raise ConfigError(
            f"model: {redact(cfg.model)} is unconditional (num_classes 0); a labelled dataset needs a "
            "class-conditional bundle, e.g. the one `genart train configs/train/cgan-digits.yaml` exports"
        )
    wanted = cfg.class_counts(n)
    bad = sorted(c for c in wanted if c >= n)
    if bad:
        raise ConfigError(f"per_class: classes {bad} are not classes of this model (it has 0..{n - 1})")
    if sum(wanted.values()) > MAX_ITEMS:
        raise ConfigError(
            f"per_class: {sum(wanted.values())} items over this model's {n} classes; at most {MAX_ITEMS} in all"
        )
    return wanted


def _prepare(out: Output, cfg: SynthesizeConfig, meta: dict, overwrite: bool) -> SynthesisSummary | None:
    """The summary of a finished identical job, else None; refuses a different finished job at the output
    (ConfigError, also for an unreadable _SUCCESS). With `overwrite` nothing is read: `_clear` empties the
    output once the job is known to run."""
    success = out.path(write.SUCCESS)
    if overwrite or not exists(out.fs, success):
        return None
    try:
        done = safejson.loads(out.fs.cat_file(success))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{out.name}/{write.SUCCESS} is not valid JSON ({exc}); pass --overwrite to replace it"
        ) from None
    if not isinstance(done, dict):
        raise ConfigError(f"{out.name}/{write.SUCCESS} is not a JSON object; pass --overwrite")
    public = cfg.model_copy(update={"output": out.name, "model": redact(cfg.model)})
    same = done.get("model_id") == meta["model_id"] and done.get("identity") == dataset_identity(
        public, meta["model_id"]
    )
    if same or done.get("config_hash") == dataset_digest(public):  # 0.1.0 wrote no identity
        return SynthesisSummary.from_dict(done)
    raise ConfigError(
        f"{out.name} holds a dataset synthesized with a different config; pass --overwrite to "
        "replace it, or choose another output"
    )


def _clear(out: Output) -> None:
    """--overwrite, once every cheap check passed: delete what the output holds, each part literally.
    Raises StorageError saying what is left."""
    remove_parts(out.fs, out.root, OUTPUT_PARTS, out.name)


def _short_message(sel: Selection, rounds: int) -> str:
    parts = []
    for c in sorted(sel.deficit()):
        s = sel.stats[c]
        parts.append(
            f"class {c}: {s.kept} of {sel.wanted[c]} (of {s.generated} candidates, {s.rejected_score} "
            f"failed filter.min_score, {s.rejected_duplicate} were near-duplicates)"
        )
    return (
        f"could not fill every class after {rounds} round(s) of candidates (filter.max_attempts): "
        + "; ".join(parts)
        + ". Relax filter.min_score (lower it or set null) or dedupe.max_distance (lower it or set null), "
        "lower per_class, or raise filter.max_attempts"
    )


def synthesize(cfg: SynthesizeConfig, overwrite: bool = False, progress: bool = True) -> SynthesisSummary:
    """Make (or resume) the dataset at cfg.output.

    Returns a `genart.synthesis.records.SynthesisSummary` (its `as_dict()` is also written to `_SUCCESS`):
    `items`, `splits` (split -> rows), `files` (split -> data file names), `rounds`, `candidates`,
    `rejected_score`, `rejected_duplicate`, `independent_accuracy`, `seconds`, `model_id`, `config_hash`,
    `identity`, `genart_version`. A dataset already complete returns the summary its `_SUCCESS` holds.

    Everything cheap (bundle, classes, filter, writability, cluster resources) is checked before --overwrite
    deletes anything. Raises (all from `genart.errors`):
    - ConfigError: an unconditional bundle, classes or totals the model cannot serve, a filter it cannot
      serve, or a different (or unreadable) finished dataset at the output without `overwrite`;
    - BundleError: the bundle's model.json or weights cannot be read;
    - StorageError: the output is not writable, or a write failed after its retries;
    - ClusterError: the Ray cluster cannot be joined or cannot host the replicas;
    - JobFailed: a candidate round failed, or the classes could not be filled within filter.max_attempts.
    """
    t0 = time.perf_counter()
    opts = cfg.storage.options
    meta = read_meta(cfg.model, opts)
    cfg = resolve_per_class(cfg, meta.get("class_names"))
    wanted = _check(cfg, meta)
    out = Output.open(cfg.output, opts)
    out.check_writable()
    fs, root = out.fs, out.root
    public = cfg.model_copy(update={"output": out.name, "model": redact(cfg.model)})
    finished = _prepare(out, cfg, meta, overwrite)
    if finished is not None:
        log.info("%s is already complete; nothing to do", out.name)
        return finished
    measures = candidate_measures(cfg, meta, opts)
    sel = Selection(wanted, cfg.filter.min_score, cfg.dedupe.max_distance)
    offset, rounds, offsets = 0, 0, []
    with ray_session(cfg.address, dashboard=False):
        if overwrite:  # only now that the bundle, classes, scorer, output and cluster all check out
            load_bundle(cfg.model, opts)
            require_resources("synthesize", cfg.replicas, cfg.cpus_per_replica, cfg.gpus_per_replica)
            _clear(out)
        for r in range(cfg.filter.max_attempts):
            counts = round_plan(sel, cfg.filter.oversample, first=r == 0)
            if not counts:
                break
            schedule = class_schedule(counts)
            log.info("round %d: %d candidates for %d class(es)", r, len(schedule), len(counts))
            gcfg = candidate_config(cfg, r, schedule, measures)
            generate(gcfg, progress=progress)
            for cand, judged in iter_round(fs, round_dir(root, r), gcfg, offset):
                sel.add_round(cand, judged)
            offsets.append(offset)
            offset += len(schedule)
            rounds = r + 1
    if sel.deficit():
        raise JobFailed(_short_message(sel, rounds))

    rows = [row for c in sorted(sel.rows) for row in sel.rows[c]]
    by_id = {row["id"]: row for row in rows}
    split_ids = assign_splits(
        np.array([r["id"] for r in rows]), np.array([r["label"] for r in rows]), cfg.splits, cfg.seed
    )
    split_rows = {s: [by_id[int(i)] for i in split_ids[s]] for s in SPLITS if s in split_ids}
    schema = write.dataset_schema(meta["class_names"], with_score=cfg.filter.min_score is not None)
    samples = {row["id"]: b"" for c in sorted(sel.rows) for row in sel.rows[c][:SAMPLES]}
    blobs = kept_blobs(fs, root, offsets, set(by_id), samples)  # streamed: one part in memory at a time
    identity = dataset_identity(public, meta["model_id"])
    if cfg.provenance.xmp:  # job_id in each image's XMP: the dataset's identity
        prov = Provenance(meta["model_id"], identity)
        blobs = ((i, prov.stamp(b, "png", i, by_id[i]["seed"])) for i, b in blobs)
    files = write.write_splits(fs, root, split_rows, schema, cfg.shard_size, blobs)
    for c in sel.rows:  # samples.png: the first SAMPLES kept items of each class
        sel.samples[c] = [samples[row["id"]] for row in sel.rows[c][:SAMPLES]]
    _write_samples(fs, root, sel)
    text = card.dataset_card(cfg, meta, sel, split_rows, files, rounds, judged=measures.judge is not None)
    retry(lambda: fs.pipe_file(join(root, write.README), text.encode()), "writing README.md")
    before, after = card.accuracy_lift(sel) if measures.judge is not None else (None, None)
    summary = SynthesisSummary(
        items=len(rows),
        splits={s: len(v) for s, v in split_rows.items()},
        files=files,
        rounds=rounds,
        candidates=offset,
        rejected_score=sum(s.rejected_score for s in sel.stats.values()),
        rejected_duplicate=sum(s.rejected_duplicate for s in sel.stats.values()),
        independent_accuracy={"candidates": before, "kept": after},
        seconds=round(time.perf_counter() - t0, 3),
        model_id=meta["model_id"],
        config_hash=dataset_digest(public),
        identity=identity,
        genart_version=__version__,
    )
    blob = json.dumps(summary.as_dict(), indent=2).encode()
    retry(lambda: fs.pipe_file(join(root, write.SUCCESS), blob), "writing _SUCCESS")
    if not cfg.keep_candidates and exists(fs, join(root, write.CANDIDATES_DIR)):
        # after _SUCCESS: a rerun never needs them
        remove(fs, join(root, write.CANDIDATES_DIR), f"{out.name}/{write.CANDIDATES_DIR}")
    log.info("dataset %s: %d items in %d round(s)", out.name, len(rows), rounds)
    return summary


def _write_samples(fs, root: str, sel: Selection) -> None:
    """samples.png: up to 10 kept items per class, one row per class (the first 10 classes)."""
    from genart.images import grid_png

    classes = sorted(sel.rows)[:10]
    cols = min(10, max(len(sel.rows[c]) for c in classes))
    rows = []
    for c in classes:
        imgs = decode_images(sel.samples[c][:cols])
        pad = np.zeros((cols - len(imgs), *imgs.shape[1:]), np.uint8)
        rows.append(np.concatenate([imgs, pad]))
    png = grid_png(np.concatenate(rows), cols=cols)
    retry(lambda: fs.pipe_file(join(root, write.SAMPLES), png), "writing samples.png")
