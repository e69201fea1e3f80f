"""GeneratorReplica: holds one generator resident on its device and turns shard specs into committed shards.

A plain Python class (unit tests use it without Ray); scheduler.py makes it a Ray actor in one place.
Generation of batch k+1 overlaps with encoding and writing of batch k in a helper thread (torch and
PIL's zlib both release the GIL), with at most two batches pending so memory stays flat.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from concurrent.futures import Future

import numpy as np

from genart.config.generate import GenerateConfig
from genart.cpu_path import CPU_PATH
from genart.errors import BundleError
from genart.filters.draw import FilteredDraw
from genart.filters.score import make_scorer
from genart.generation.engine import EncodePool, Engine, StageTimes, choose_device, use_channels_last
from genart.generation.plan import ShardSpec, children_of
from genart.generation.records import ShardResult
from genart.generation.vary import item_inputs, needs_inputs
from genart.images import Batch, decode, encode
from genart.market import TokenWriter
from genart.market.xmp import Provenance
from genart.storage.commit import ShardFormat, ShardWrite, ShardWriter
from genart.storage.fs import redact
from genart.storage.hf import class_names_of
from genart.storage.output import Output

log = logging.getLogger(__name__)

PENDING_BATCHES = 2


def filter_columns(cfg: GenerateConfig) -> tuple[str, ...]:
    """The metadata columns the job's filters add: `score` (quality filter), `phash` (near-duplicates), and
    the columns synthesize's candidate rounds measure (`cfg.measures`: score, phash, judged), in that order;
    then a variations job's `parent_job` and `parent_ids`."""
    names = (("score",) if cfg.filter.min_score is not None else ()) + (
        ("phash",) if cfg.dedupe.max_distance is not None else ()
    )
    measured = cfg.measures.columns() if cfg.measures is not None else ()
    parents = ("parent_job", "parent_ids") if cfg.variations is not None else ()
    return tuple(n for n in ("score", "phash", "judged") if n in names or n in measured) + parents


def threads(cfg: GenerateConfig) -> int:
    """torch threads of a replica: one per CPU it was given (at least one)."""
    return max(1, int(round(cfg.cpus_per_replica)))


class GeneratorReplica:
    def __init__(
        self,
        cfg: GenerateConfig,
        job_id: str,
        model_id: str,
        claim=None,
        loaded=None,
        cpu_path: str = CPU_PATH,
        encode_workers: int | None = None,
    ):
        """`claim(ids, hashes) -> [bool]`: the job's near-duplicate index (needed when dedupe.max_distance
        is set; the runner passes a handle to its HashIndex actor). `loaded`: the bundle a warm replica
        (`generation/warm.py`) already holds, used instead of loading `cfg.model` again. `cpu_path`: how a
        CPU computes the items (the job record's, `genart.cpu_path.cpu_path_of`); ValueError for an unknown one.
        `encode_workers`: encode threads, overriding inference.encode_workers (0 = encode in the calling
        thread)."""
        import torch

        from genart.bundle import load_bundle

        torch.set_num_threads(threads(cfg))
        device = str(choose_device(cfg.gpus_per_replica))  # "cuda:N" or "cpu"
        self.cfg = cfg
        if loaded is None:
            self.bundle = load_bundle(cfg.model, cfg.storage.options, device=device)
        else:  # this job's own Bundle record (its engine), and its own module where the options change it
            gen = loaded.generator
            # prepare() copies a CPU generator whose memory format differs; compile and CUDA channels_last change it
            if cfg.inference.compile or use_channels_last(cfg.inference.channels_last, torch.device(device)):
                gen = copy.deepcopy(gen)
            self.bundle = dataclasses.replace(loaded, generator=gen, engine=None)
        if self.bundle.model_id != model_id:
            raise BundleError(
                f"bundle {redact(cfg.model)} changed during the job "
                f"(model_id {self.bundle.model_id[:12]}..., "
                f"the job started with {model_id[:12]}...); re-run with --overwrite to use the new model"
            )
        out = Output.open(cfg.output, cfg.storage.options)  # once per replica (it runs in its own process)
        names = class_names_of(self.bundle.meta)
        shard_format = ShardFormat(job_id, model_id, cfg.image.format, cfg.layout, filter_columns(cfg), names)
        self.writer = ShardWriter(out, shard_format)
        # the XMP disclosure stamped into each encoded image (provenance.xmp), or None
        self.provenance = Provenance(model_id, job_id) if cfg.provenance.xmp else None
        # bf16 / channels_last / compile and pinned copies (engine.Engine); seconds per stage in self.times
        self.times = StageTimes()
        self.bundle.engine = Engine(self.bundle.generator, device, cfg.inference, self.times, cpu_path)
        # each batch is encoded and written by all the workers at once (one per CPU of the replica)
        workers = cfg.inference.encode_workers or max(1, int(round(cfg.cpus_per_replica)))
        workers = workers if encode_workers is None else encode_workers
        self._pool = EncodePool(workers, self.times)
        # tokens/{id}.json when market.standard: opensea
        self.tokens = TokenWriter(cfg, self.bundle.meta, out)
        self.draw = FilteredDraw(
            self._generate,
            min_score=cfg.filter.min_score,
            scorer=make_scorer(
                cfg.filter, self.bundle.meta, cfg.model, cfg.storage.options, device, generate=self._generate
            ),
            max_distance=cfg.dedupe.max_distance,
            claim=claim if cfg.dedupe.max_distance is not None else None,
            max_attempts=cfg.filter.max_attempts,
            stored=None if cfg.image.format == "png" else self._as_stored,
        )
        self._measure = cfg.measures  # synthesize's candidates: score, phash, judged columns (or None)
        # variations and classes.blend jobs: items made from latents and class weights (genart/generation/vary.py)
        self.children = children_of(cfg, int(self.bundle.meta["num_classes"]))
        log.info("replica pid %d: bundle %s on %s", os.getpid(), self.bundle.model_id[:12], device)

    def _as_stored(self, images: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """uint8 (N, H, W, C) -> (the N file bytes a lossy format (jpeg, webp) stores, the uint8 pixels they
        decode to): the near-duplicate hash must see the stored pixels, and the bytes are kept for the write."""
        fmt, quality = self.cfg.image.format, self.cfg.image.quality
        blobs = [encode(im, fmt, quality) for im in images]
        return blobs, np.stack([decode(b) for b in blobs])

    def _generate(self, seeds, class_ids) -> np.ndarray:
        return self.bundle.generate(seeds, class_ids, truncation=self.cfg.truncation)

    def _made_from_inputs(self, ids: np.ndarray, seeds: np.ndarray, cls) -> Batch:
        """A batch of a variations or classes.blend job: latents and class weights from vary.item_inputs."""
        g = self.bundle.generator
        z, y = item_inputs(self.cfg, self.children, g.num_classes, g.latent_dim, ids, seeds, cls)
        batch = Batch(ids, seeds, cls, self.bundle.engine.run(z, y))
        if self.children is None:
            return batch
        parent_job = np.full(len(ids), self.cfg.variations.parent_job, dtype=object)
        return batch.replace(parent_job=parent_job, parent_ids=self.children.parent_ids(ids))

    def unfiltered_batch(self, ids: np.ndarray, seeds: np.ndarray, cls) -> Batch:
        """The batch of `ids` before any filter: made from latents and class weights for variations and
        classes.blend jobs, from seeds otherwise (images uint8 (N, H, W, C), not yet encoded)."""
        if needs_inputs(self.cfg):
            return self._made_from_inputs(ids, seeds, cls)
        return Batch(ids, seeds, cls, self._generate(seeds, cls))

    def _encode_and_write(self, out: ShardWrite, batch: Batch) -> None:
        """Measure (synthesize's candidates), encode (unless the draw already did), stamp the XMP disclosure
        (provenance.xmp), write and add the tokens of one batch (or a slice of it), on an encode thread.
        Raises StorageError from the writes."""
        if self._measure is not None:
            batch = self._measure(batch)
        fmt, quality = self.cfg.image.format, self.cfg.image.quality
        if batch.blobs is None:
            batch = batch.replace(blobs=[encode(img, fmt, quality) for img in batch.images])
        if self.provenance is not None:
            batch = batch.replace(blobs=self.provenance.stamp_all(batch.blobs, fmt, batch.ids, batch.seeds))
        out.add(batch)
        self.tokens.write(out.shard, batch)  # before the shard's commit

    def close(self) -> None:
        """Stop the encode threads (a warm replica closes each job's replica; a cold one just exits)."""
        self._pool.shutdown(wait=False)

    def run_shard(self, spec: ShardSpec) -> ShardResult:
        """Generate, encode and write every item of the shard, then commit its metadata. Raises StorageError
        when a write still fails after its retries."""
        t0 = time.perf_counter()
        out = self.writer.open_shard(spec.shard)
        ids = spec.ids
        rejected = {"score": 0, "duplicate": 0}
        pending: list[Future] = []
        bs = self.cfg.batch_size
        for lo in range(0, spec.n, bs):
            sl = slice(lo, lo + bs)
            # a copy: Ray hands the driver's arrays over read-only, torch wants writable ones
            cls = None if spec.class_ids is None else np.array(spec.class_ids[sl])
            if self.draw.active:  # rejection sampling: rejected items are redrawn from derived seeds
                drawn = self.draw(ids[sl], spec.seeds[sl], cls, attempt=spec.attempt)
                batch = drawn.batch
                rejected["score"] += drawn.rejected_score
                rejected["duplicate"] += drawn.rejected_duplicate
            else:
                batch = self.unfiltered_batch(ids[sl], spec.seeds[sl], cls)
            if len(pending) >= PENDING_BATCHES:
                pending.pop(0).result()
            pending.append(self._pool.submit(self._encode_and_write, out, batch))
        for fut in pending:
            fut.result()  # re-raises a StorageError from the writer thread
        nbytes = out.commit()
        seconds = time.perf_counter() - t0
        log.debug("shard %d: %d images, %d bytes in %.2fs", spec.shard, spec.n, nbytes, seconds)
        return ShardResult(spec.shard, spec.n, nbytes, seconds, rejected["score"], rejected["duplicate"])
